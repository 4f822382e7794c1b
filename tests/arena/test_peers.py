"""Every leaderboard statistic against the peers' own code (tests/arena/peers.py) on the same judgments."""

from __future__ import annotations

import json
import math
import random
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from critic.arena import arena_from_judgments, run_arena
from critic.arena.battles import Battle
from critic.arena.style import LC_C, length_controlled, markdown_counts, style_features
from critic.judges.ranking import fit_bradley_terry

from . import peers
from .fakes import arena_hard_judgments, quality_judge, write_answers

DATA = Path(__file__).parent / "data"
pytest.importorskip("sklearn")
pytest.importorskip("patsy")


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    """A real arena run on the fake backend: three models against a baseline, 30 questions."""
    folder = tmp_path_factory.mktemp("peers")
    paths = write_answers(folder / "answers", ("careful", "terse", "padded", "newcomer"), questions=30)
    run = run_arena(paths, quality_judge(), folder / "out", baseline="terse", bootstrap=20, figure=False)
    lines = [json.loads(line) for line in (folder / "out" / "judgments.jsonl").read_text().splitlines()]
    texts = {(row["model"], row["id"]): row["response"]
             for path in paths for row in map(json.loads, path.read_text().splitlines())}
    return run, lines, texts


def annotations(lines, texts, model, preference):
    """AlpacaEval's annotations of one model's judgments: output_1 the baseline, output_2 the model."""
    return [{"instruction": line["question"], "generator_1": "terse", "generator_2": model,
             "output_1": texts[("terse", line["question"])], "output_2": texts[(model, line["question"])],
             "preference": preference(line)} for line in lines if line["model_a"] == model]


@pytest.mark.parametrize("model", ["careful", "padded", "newcomer"])
def test_win_rates_equal_alpaca_evals_get_winrate_on_the_same_judgments(judged, model):
    run, lines, texts = judged
    entry = run.leaderboard.entry(model)
    soft = peers.get_winrate(annotations(lines, texts, model, lambda line: 1.0 + line["p_a"]))
    by_label = peers.get_winrate(annotations(lines, texts, model,
                                             lambda line: {"A": 2.0, "B": 1.0, "tie": 1.5}[line["label"]]))
    assert entry.soft_win_rate == pytest.approx(soft["win_rate"], abs=1e-9)
    assert entry.soft_win_rate_se == pytest.approx(soft["standard_error"], abs=1e-9)
    assert entry.discrete_win_rate == pytest.approx(soft["discrete_win_rate"], abs=1e-9)
    assert entry.score == pytest.approx(soft["win_rate"], abs=1e-9)
    assert entry.win_rate == pytest.approx(by_label["win_rate"], abs=1e-9)
    assert (entry.wins, entry.ties, entry.losses) == (by_label["n_wins"], by_label["n_draws"], by_label["n_wins_base"])
    assert entry.battles == soft["n_total"] == 30
    everyone = run.leaderboard.models
    assert all(sum(getattr(e, name) for e in everyone) > 0 for name in ("wins", "ties", "losses"))


@pytest.mark.parametrize("model", ["careful", "padded", "newcomer"])
def test_length_controlled_win_rate_equals_alpaca_evals_glm_fit(judged, model):
    """AlpacaEval's own featurisation and fit (n_splits=0: L1, C=100, liblinear) at a tight tolerance."""
    run, lines, texts = judged
    rows = annotations(lines, texts, model, lambda line: 1.0 + line["p_a"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn's FutureWarning on penalty="l1"
        theirs = peers.length_controlled_winrate(rows, n_splits=0, C=LC_C, tol=1e-12, max_iter=100_000)
    assert run.leaderboard.entry(model).lc_win_rate == pytest.approx(theirs, abs=1e-4)


def test_length_controlled_win_rate_against_alpaca_evals_cross_validated_fit(judged):
    """With AlpacaEval's default five folds (C chosen by cross-validation) the figure moves a little."""
    run, lines, texts = judged
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = peers.length_controlled_winrate(annotations(lines, texts, "careful", lambda line: 1 + line["p_a"]))
    assert run.leaderboard.entry("careful").lc_win_rate == pytest.approx(theirs, abs=2.0)


def test_the_l1_penalty_keeps_saturated_lengths_from_running_away():
    """All answers far longer than the baseline's: tanh saturates; unpenalised, the fit runs to 100%."""
    rng = random.Random(3)
    battles = [Battle(f"q{i}", "long", "short", 0.47 + 0.04 * rng.random(), "tie", text_a="x" * (900 + 37 * i),
                      text_b="y" * 20) for i in range(20)]
    lc = length_controlled(battles)
    assert lc is not None and lc.converged and 45 < lc.win_rate < 55
    rows = [{"instruction": b.question, "output_1": b.text_b, "output_2": b.text_a, "preference": 1 + b.outcome}
            for b in battles]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = peers.length_controlled_winrate(rows, n_splits=0, C=LC_C, tol=1e-12, max_iter=100_000)
    assert lc.win_rate == pytest.approx(theirs, abs=1e-3)


def test_bradley_terry_equals_a_plain_logistic_regression_and_compute_mle_elo_on_real_battles(tmp_path):
    """Arena-Hard's real battle file: ratings equal Chatbot Arena's compute_mle_elo (SCALE 400, BASE 10, INIT 1000)."""
    baseline = "claude-3-haiku-20240307"  # model_a of every battle in the file
    battles = pd.read_json(DATA / "arena_hard_battles.jsonl", lines=True)
    for anchor in (baseline, None):
        run = arena_from_judgments([DATA / "arena_hard_battles.jsonl"], tmp_path / str(anchor), baseline=anchor,
                                   bootstrap=0, figure=False)
        assert run.leaderboard.settings["battles"] == len(battles) == 2136
        tight = peers.compute_mle_elo(battles, baseline_model=str(anchor), tol=1e-12, max_iter=10_000)
        as_written = peers.compute_mle_elo(battles, baseline_model=str(anchor))  # tol=1e-8 stops ~1e-5 Elo short
        assert len(tight) == len(run.leaderboard.models) == 5
        for entry in run.leaderboard.models:
            assert entry.elo == pytest.approx(tight[entry.model], abs=1e-6)
            assert entry.elo == pytest.approx(as_written[entry.model], abs=1e-3)
            assert entry.bt == pytest.approx((tight[entry.model] - 1000) * math.log(10) / 400, abs=1e-6)
    assert tight.mean() == pytest.approx(1000.0)  # no anchor: the ratings average INIT_RATING


def test_soft_outcomes_equal_a_weighted_logistic_regression_without_an_anchor():
    """Judges' probabilities as outcomes: the same fit as sklearn on duplicated rows (y=1 weight p, y=0 weight 1-p)."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    models, n = 5, 400
    first = rng.integers(0, models, n)
    second = (first + rng.integers(1, models, n)) % models
    outcomes = rng.uniform(0.05, 0.95, n)
    ours = fit_bradley_terry(models, first, second, outcomes)
    design = np.zeros((n, models))
    design[np.arange(n), first] = 1.0
    design[np.arange(n), second] = -1.0
    lr = LogisticRegression(fit_intercept=False, C=np.inf, tol=1e-12, max_iter=10_000)
    lr.fit(np.vstack([design, design]), np.r_[np.ones(n), np.zeros(n)], sample_weight=np.r_[outcomes, 1 - outcomes])
    theirs = lr.coef_[0] - lr.coef_[0].mean()
    assert ours.converged
    assert np.allclose(ours.scores, theirs, atol=1e-6)


def test_arena_hard_scores_equal_show_results_mean_battle_scores_exactly(tmp_path):
    rows = arena_hard_judgments()
    path = tmp_path / "judgments.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    run = arena_from_judgments([path], tmp_path / "out", bootstrap=200, seed=1, figure=False)
    battles = peers.load_judgments(rows)
    means = battles.assign(scores=battles.scores.astype(float)).groupby("model")["scores"].mean()
    _, lower, upper = peers.print_leaderboard_scores(battles, rounds=200)
    for model, mean in means.items():
        entry = run.leaderboard.entry(model)
        assert entry.score == 100.0 * mean  # exactly: both sum halves and wholes, then divide
        # their bootstrap draws battle entries, ours questions: the same intervals up to bootstrap noise
        assert entry.ci_low == pytest.approx(100 * lower[model], abs=3.0)
        assert entry.ci_high == pytest.approx(100 * upper[model], abs=3.0)
    assert run.failed == 2 and run.leaderboard.entry("model-y").failed == 1
    assert run.leaderboard.entry("o3-mini-2025-01-31").score == 50.0


def test_style_features_and_style_control_equal_arena_hards_on_real_metadata():
    """Real o3-mini answers with Arena-Hard's own metadata: the same counts, features and controlled scores."""
    answers = [json.loads(line) for line in (DATA / "arena_hard_v2_answers.jsonl").read_text().splitlines()]
    for answer in answers:  # our markdown counts from the text equal the metadata Arena-Hard wrote
        text = answer["messages"][-1]["content"]["answer"]
        theirs = peers.markdown_metadata(text, answer["metadata"]["token_len"])
        assert theirs == answer["metadata"]
        assert markdown_counts(text) == {"headers": sum(theirs["header_count"].values()),
                                         "lists": sum(theirs["list_count"].values()),
                                         "bold": sum(theirs["bold_count"].values())}
    import torch

    rng = random.Random(5)
    # three "models" answering with the real answers' metadata, in a shuffled pairing with the baseline
    battles, model_meta, base_meta = [], [], []
    for round_ in range(6):
        for index, answer in enumerate(answers):
            model = ("m1", "m2", "m3")[(index + round_) % 3]
            other = answers[(index + 5 * round_ + 1) % len(answers)]
            outcome = rng.choice([0.0, 0.5, 1.0, 1.0])
            battles.append(Battle(f"{answer['uid']}-{round_}", model, "base", outcome, "tie",
                                  metadata_a=answer["metadata"], metadata_b=other["metadata"]))
            model_meta.append(answer["metadata"])
            base_meta.append(other["metadata"])
    ours, unit = style_features(battles)
    theirs = peers.style_feature_tensor(model_meta, base_meta)
    assert unit.startswith("tokens") and np.allclose(np.array(ours), theirs.numpy(), atol=1e-5)
    from critic.arena.ratings import fit_ratings

    fitted = fit_ratings(["m1", "m2", "m3", "base"], battles, anchor="base", features=ours)
    one_hot, names = peers.one_hot_encode([b.model_a for b in battles], baseline="base")
    features = torch.cat([one_hot, torch.tensor(ours, dtype=torch.float32)], dim=1)
    outcomes = torch.tensor([b.outcome for b in battles])
    # their LBFGS in float32, run to convergence (their defaults, lr 0.1 and 50 iterations, stop short of it)
    coefs = peers.fit_pairwise_model(features, outcomes, lr=1.0, max_epochs=1000, tol=1e-10)
    probs = peers.to_winrate_probabilities(coefs[None, : len(names)], names, baseline_model="base")[0]
    for model in ("m1", "m2", "m3"):
        assert fitted.win_rate(model) == pytest.approx(100 * float(probs[names.index(model)]), abs=1e-3)
    assert np.allclose(fitted.coefficients, coefs[len(names):].numpy(), atol=1e-4)
