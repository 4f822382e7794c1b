"""The peers' own scoring code, re-typed as test oracles (each function names its file and function).

Neither peer installs cleanly as a library here: ``alpaca_eval`` imports its API clients and
``pkg_resources`` on import, Arena-Hard-Auto is a folder of scripts. The functions below are
copied from their sources with only the file reading and the downloads taken out (marked
"critic:"); everything that computes a number is as they wrote it.

- tatsu-lab/alpaca_eval @ cd543a1: ``src/alpaca_eval/metrics/helpers.py``, ``metrics/winrate.py``,
  ``metrics/glm_winrate.py``, ``utils.py``.
- lmarena/arena-hard-auto @ 196f6b8: ``show_result.py``, ``utils/math_utils.py``,
  ``utils/add_markdown_info.py``; @ b4cbc3e (Aug 2024): ``show_result.py``'s ``compute_mle_elo`` and
  ``get_battles_from_row`` (Chatbot Arena's Bradley-Terry fit, as Arena-Hard v0.1 used it).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

# --------------------------------------------------------------------------- AlpacaEval


def validate_alpacaeval_preference(x, is_allow_nan=True):
    """alpaca_eval/utils.py: validate_alpacaeval_preference."""
    return (1 <= x <= 2) or (is_allow_nan and np.isnan(x))


def describe_head2head(predictions):
    """alpaca_eval/metrics/helpers.py: BaseScoringRule.describe_head2head (``predictions`` preprocessed)."""
    n_draws = ((predictions == 1.5) | (predictions == 0)).sum()
    predictions = predictions.astype(float).replace({0.0: 1.5})
    is_preference = predictions.apply(validate_alpacaeval_preference, is_allow_nan=False)
    predictions = predictions[is_preference] - 1
    n_wins = (predictions > 0.5).sum()
    n_wins_base = (predictions < 0.5).sum()
    n_total = len(predictions)
    return dict(
        win_rate=predictions.mean() * 100,
        standard_error=predictions.sem() * 100,
        n_wins=n_wins,
        n_wins_base=n_wins_base,
        n_draws=n_draws,
        n_total=n_total,
    )


def absolute_preprocess(predictions):
    """alpaca_eval/metrics/helpers.py: BaseScoringRule.preprocess_predictions (AbsoluteScoringRule's)."""
    return pd.Series(predictions).replace({0: 1.5}).astype(float)


def zero_one_preprocess(predictions):
    """alpaca_eval/metrics/helpers.py: ZeroOneScoringRule.preprocess_predictions."""
    return pd.Series(predictions).replace({1.5: 0}).round().astype(pd.Int64Dtype())


def get_winrate(annotations):
    """alpaca_eval/metrics/winrate.py: get_winrate."""
    annotations = pd.DataFrame.from_records(annotations)  # utils.convert_to_dataframe of a list
    preferences = annotations["preference"]
    out = describe_head2head(absolute_preprocess(preferences))
    out["discrete_win_rate"] = describe_head2head(zero_one_preprocess(preferences))["win_rate"]
    return out


LENGTH_CONTROLLED_MINIMAL = "np.tanh(std_delta_len) + not_gamed_baseline.astype(float) - 1"  # glm_winrate.GLM_INFO


def get_featurized_data(df_annotations, formula=LENGTH_CONTROLLED_MINIMAL):
    """alpaca_eval/metrics/glm_winrate.py: _get_featurized_data, with regularize_to_baseline_lambda=None.

    critic: step 1 (downloading df_gamed.csv for the instruction difficulty) is left out: the minimal formula
    does not read it.
    """
    df = df_annotations.reset_index()
    len_1 = df["output_1"].str.len()
    len_2 = df["output_2"].str.len()
    std_delta_len = len_1 - len_2
    df = df[["preference", "index"]].copy()
    df["std_delta_len"] = std_delta_len / std_delta_len.std()
    df["preference"] = df["preference"].astype(float).replace({0.0: 1.5}) - 1
    df["not_gamed_baseline"] = True
    df_test = df[["not_gamed_baseline"]].copy()
    df_test["std_delta_len"] = 0
    sample_weight = None
    df_XY_train, df_X_test = make_dmatrix_for_model(df, df_test, formula=formula)
    return df_XY_train, df_X_test, sample_weight


def make_dmatrix_for_model(df_train, df_test, formula, col_y_true="preference"):
    """alpaca_eval/metrics/glm_winrate.py: make_dmatrix_for_model."""
    from patsy import build_design_matrices, dmatrix

    df_XY_train = dmatrix(formula, df_train, return_type="dataframe")
    df_X_test = build_design_matrices([df_XY_train.design_info], df_test, return_type="dataframe")[0]
    df_XY_train[col_y_true] = df_train[col_y_true]
    return df_XY_train, df_X_test


def fit_LogisticRegressionCV(data, col_y_true, is_ytrue_proba=True, n_splits=5, C=100, sample_weight=None,  # noqa: N802
                             **kwargs):
    """alpaca_eval/metrics/glm_winrate.py: fit_LogisticRegressionCV (its is_ytrue_proba path)."""
    import sklearn
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.metrics import make_scorer
    from sklearn.model_selection import GroupKFold

    sklearn.set_config(enable_metadata_routing=True)
    dflt_kwargs = dict(random_state=123, dual=False, penalty="l1", solver="liblinear", n_jobs=None,
                       fit_intercept=False)
    dflt_kwargs.update(kwargs)
    data = data.reset_index(drop=True).reset_index(drop=False, names=["group"])
    data_1 = data.copy()
    data_1["y"] = 1
    data_0 = data.copy()
    data_0[col_y_true] = 1 - data_0[col_y_true]
    data_0["y"] = 0
    data_dup = pd.concat([data_1, data_0], axis=0).reset_index(drop=True)
    true_prob = data_dup[col_y_true]
    true_sample_weight = None
    sample_weight = true_prob
    if n_splits > 0:
        cv = GroupKFold(n_splits=n_splits)
        scorer = make_scorer(logloss_continuous, response_method="predict_proba",
                             greater_is_better=False).set_score_request(true_sample_weight=True, true_prob=True)
        model = LogisticRegressionCV(cv=cv, scoring=scorer, **dflt_kwargs)
        fit_kwargs = dict(groups=data_dup["group"], true_sample_weight=true_sample_weight, true_prob=true_prob)
    else:
        model = LogisticRegression(C=C, **dflt_kwargs)
        fit_kwargs = dict()
    model.set_fit_request(sample_weight=True)
    model.fit(X=data_dup.drop(columns=[col_y_true, "y", "group"]), y=data_dup["y"], sample_weight=sample_weight,
              **fit_kwargs)
    sklearn.set_config(enable_metadata_routing=False)  # critic: leave sklearn as it was
    return model


def logloss(y_true, y_pred, sample_weight=None):
    """alpaca_eval/metrics/glm_winrate.py: logloss."""
    epsilon = 1e-15
    y_pred = np.clip(y_pred, epsilon, 1 - epsilon)
    all_logloss = y_true * np.log(y_pred) + (1 - y_true) * np.log(1 - y_pred)
    if sample_weight is not None:
        all_logloss = all_logloss * sample_weight
    return -np.mean(all_logloss)


def logloss_continuous(y_true, y_pred, true_prob, true_sample_weight=None):
    """alpaca_eval/metrics/glm_winrate.py: logloss_continuous."""
    y_true = np.where(y_true == 1, true_prob, 1 - true_prob)
    return logloss(y_true, y_pred, sample_weight=true_sample_weight)


def length_controlled_winrate(annotations, **fit_kwargs):
    """alpaca_eval/metrics/glm_winrate.py: get_length_controlled_winrate's GLM part, for one model (percent).

    critic: the minimal formula (no instruction difficulty), no weights saved, no baseline re-prediction.
    """
    df = pd.DataFrame.from_records(annotations)
    df_XY_train, df_X_test, sample_weight = get_featurized_data(df)
    filter_df = df_XY_train["preference"].notna()
    df_XY_train = df_XY_train[filter_df]
    model = fit_LogisticRegressionCV(df_XY_train, "preference", is_ytrue_proba=True, sample_weight=sample_weight,
                                     **fit_kwargs)
    predicted_preferences = model.predict_proba(df_X_test)[:, 1]
    return predicted_preferences.mean() * 100


# --------------------------------------------------------------------------- Arena-Hard (v2, HEAD)

LABEL_TO_SCORE_WEIGHT = 3


def load_judgments(data, weight=3):
    """arena-hard-auto show_result.py: load_judgments (critic: ``data`` is the judgment rows, not a glob)."""
    data = pd.DataFrame.from_records(data)
    null_indices = data.games.map(lambda x: x[0] is None or x[1] is None or x[0]["score"] is None
                                  or x[1]["score"] is None)
    _data = data[~null_indices].reset_index(drop=True)
    label_to_score = {
        "A>B": [1], "A>>B": [1] * weight, "A=B": [0.5], "A<<B": [0] * weight, "A<B": [0],
        "B>A": [0], "B>>A": [0] * weight, "B=A": [0.5], "B<<A": [1] * weight, "B<A": [1],
    }
    _data["scores"] = _data.games.map(
        lambda x: label_to_score[x[1]["score"]] + [1 - s for s in label_to_score[x[0]["score"]]])
    battles = _data[["uid", "model", "category", "scores"]].explode("scores").reset_index(drop=True)
    return battles


def print_leaderboard_scores(battles, rounds=100, seed=0):
    """arena-hard-auto show_result.py: print_leaderboard, up to the scores (fractions): mean, 5% and 95%.

    critic: pandas' global sampling is seeded here so the test is repeatable; the scores are returned.
    """
    np.random.seed(seed)
    _battles = battles.drop(columns=["category"])[["model", "scores"]]
    _battles["model"] = _battles["model"].map(lambda x: x.split("/")[-1])
    bootstraps = pd.concat([
        _battles.groupby("model").sample(frac=1.0, replace=True).groupby("model").mean()
        for _ in range(rounds)
    ])
    bootstraps["scores"] = bootstraps["scores"].astype(float)
    mean_scores = bootstraps.groupby("model").mean()["scores"]
    lower = bootstraps.groupby("model").quantile(0.05)["scores"]
    upper = bootstraps.groupby("model").quantile(0.95)["scores"]
    return mean_scores, lower, upper


def count_markdown_elements(markdown_text, suffix):
    """arena-hard-auto utils/add_markdown_info.py: count_markdown_elements."""
    return {
        f"header_count{suffix}": {
            "h1": len(re.findall(r"^#{1}\s", markdown_text, re.MULTILINE)),
            "h2": len(re.findall(r"^#{2}\s", markdown_text, re.MULTILINE)),
            "h3": len(re.findall(r"^#{3}\s", markdown_text, re.MULTILINE)),
            "h4": len(re.findall(r"^#{4}\s", markdown_text, re.MULTILINE)),
            "h5": len(re.findall(r"^#{5}\s", markdown_text, re.MULTILINE)),
            "h6": len(re.findall(r"^#{6}\s", markdown_text, re.MULTILINE)),
        },
        f"list_count{suffix}": {
            "ordered": len(re.findall(r"^\s*\d+\.\s", markdown_text, re.MULTILINE)),
            "unordered": len(re.findall(r"^\s*[-*+]\s", markdown_text, re.MULTILINE)),
        },
        f"bold_count{suffix}": {
            "**": len(re.findall(r"\*\*[^*\n]+\*\*", markdown_text)),
            "__": len(re.findall(r"__[^_\n]+__", markdown_text)),
        },
    }


def remove_pattern(answer, pattern):
    """arena-hard-auto utils/add_markdown_info.py: remove_pattern."""
    blocks = pattern.findall(answer)
    for block in blocks:
        answer = answer.replace(block, "")
    return answer


def markdown_metadata(answer, token_len):
    """arena-hard-auto utils/add_markdown_info.py: get_element_counts + add_markdown_meta, for one answer.

    critic: ``token_len`` is given (Arena-Hard counts tiktoken's gpt-4o tokens).
    """
    pattern = re.compile("```([^`]*)```")
    return {"token_len": token_len} | count_markdown_elements(remove_pattern(answer, pattern), suffix="")


def style_feature_tensor(model_features, baseline_features):
    """arena-hard-auto show_result.py: print_leaderboard_with_style_features, the normalised features."""
    import torch

    model_feature_tensor = torch.tensor([
        [v if isinstance(v, int) else sum(v.values()) for k, v in metadata.items()] for metadata in model_features
    ], dtype=torch.float32)
    baseline_feature_tensor = torch.tensor([
        [v if isinstance(v, int) else sum(v.values()) for k, v in metadata.items()] for metadata in baseline_features
    ], dtype=torch.float32)
    final_feature_tensor = torch.zeros_like(model_feature_tensor)
    final_feature_tensor[:, 0] = (model_feature_tensor[:, 0] - baseline_feature_tensor[:, 0]) / (
        model_feature_tensor[:, 0] + baseline_feature_tensor[:, 0])
    model_md_density = model_feature_tensor[:, 1:] / (model_feature_tensor[:, :1] + 1)
    baseline_md_density = baseline_feature_tensor[:, 1:] / (baseline_feature_tensor[:, :1] + 1)
    final_feature_tensor[:, 1:] = (model_md_density - baseline_md_density) / (
        model_md_density + baseline_md_density + 1)
    normalized_feature_tensor = (final_feature_tensor - torch.mean(final_feature_tensor, axis=0)) / torch.std(
        final_feature_tensor, axis=0)
    return normalized_feature_tensor


def fit_pairwise_model(features, outcomes, lr=0.1, tol=1e-9, max_epochs=50):
    """arena-hard-auto utils/math_utils.py: fit_pairwise_model with loss_type "bt" (BTModel, bt_loss)."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    logits = torch.nn.Parameter(torch.nn.init.constant_(torch.empty(features.shape[1]), 0.5))
    optimizer = torch.optim.LBFGS([logits], lr=lr, max_iter=max_epochs, tolerance_grad=tol, tolerance_change=tol)

    def closure():
        optimizer.zero_grad()
        loss = F.binary_cross_entropy_with_logits(features @ logits, outcomes.float(), reduction="sum")
        loss.backward()
        return loss

    optimizer.step(closure)
    return logits.detach()


def one_hot_encode(items, baseline):
    """arena-hard-auto utils/math_utils.py: one_hot_encode."""
    import torch

    unique_items = sorted(set(items + [baseline]))
    item_to_index = {item: idx for idx, item in enumerate(unique_items)}
    one_hot_matrix = []
    for item in items:
        one_hot_vector = [0] * len(unique_items)
        one_hot_vector[item_to_index[item]] = 1
        one_hot_vector[item_to_index[baseline]] = -1
        one_hot_matrix.append(one_hot_vector)
    return torch.tensor(one_hot_matrix, dtype=torch.float32), unique_items


def to_winrate_probabilities(coefs, models, baseline_model):
    """arena-hard-auto utils/math_utils.py: to_winrate_probabilities."""
    import torch

    baseline_idx = models.index(baseline_model)
    exp_coefs = torch.exp(coefs)
    probs = torch.zeros(coefs.shape[0], coefs.shape[1])
    for idx in range(len(models)):
        if models[idx] == baseline_model:
            probs[:, idx] = 0.5
        probs[:, idx] = exp_coefs[:, idx] / (exp_coefs[:, idx] + exp_coefs[:, baseline_idx])
    return probs


# --------------------------------------------------------------------------- Chatbot Arena (arena-hard-auto @ b4cbc3e)


def compute_mle_elo(df, SCALE=400, BASE=10, INIT_RATING=1000, baseline_model="gpt-4-0314", tol=1e-8,  # noqa: N803
                    max_iter=100):
    """arena-hard-auto show_result.py @ b4cbc3e: compute_mle_elo (critic: ``tol`` and ``max_iter`` made parameters)."""
    from sklearn.linear_model import LogisticRegression

    models = pd.concat([df["model_a"], df["model_b"]]).unique()
    models = pd.Series(np.arange(len(models)), index=models)
    df = pd.concat([df, df], ignore_index=True)
    p = len(models.index)
    n = df.shape[0]
    X = np.zeros([n, p])  # noqa: N806
    X[np.arange(n), models[df["model_a"]]] = +math.log(BASE)
    X[np.arange(n), models[df["model_b"]]] = -math.log(BASE)
    Y = np.zeros(n)  # noqa: N806
    Y[df["winner"] == "model_a"] = 1.0
    tie_idx = (df["winner"] == "tie") | (df["winner"] == "tie (bothbad)")
    tie_idx[len(tie_idx) // 2:] = False
    Y[tie_idx] = 1.0
    # critic: penalty=None as scikit-learn >= 1.8 spells it (C=inf, the same unpenalised fit)
    lr = LogisticRegression(fit_intercept=False, C=np.inf, tol=tol, max_iter=max_iter)
    lr.fit(X, Y)
    elo_scores = SCALE * lr.coef_[0] + INIT_RATING
    if baseline_model in models.index:
        elo_scores += 1000 - elo_scores[models[baseline_model]]
    return pd.Series(elo_scores, index=models.index).sort_values(ascending=False)


def get_battles_from_row(row, first_game_only, multiplier, baseline_model):
    """arena-hard-auto show_result.py @ b4cbc3e: get_battles_from_row."""
    results = []
    output = {"question_id": row["question_id"], "model_a": baseline_model, "model_b": row["model"]}
    game = row["games"][0]
    weight = 1
    if game["score"] == "A=B":
        output["winner"] = "tie"
    elif game["score"] == "A>B":
        output["winner"] = "model_a"
    elif game["score"] == "A>>B":
        output["winner"] = "model_a"
        weight = multiplier
    elif game["score"] == "B>A":
        output["winner"] = "model_b"
    elif game["score"] == "B>>A":
        output["winner"] = "model_b"
        weight = multiplier
    else:
        weight = 0
    if weight:
        results += [output] * weight
    if first_game_only:
        return results
    output = {"question_id": row["question_id"], "model_a": baseline_model, "model_b": row["model"]}
    game = row["games"][1]
    weight = 1
    if game["score"] == "A=B":
        output["winner"] = "tie"
    elif game["score"] == "A>B":
        output["winner"] = "model_b"
    elif game["score"] == "A>>B":
        output["winner"] = "model_b"
        weight = multiplier
    elif game["score"] == "B>A":
        output["winner"] = "model_a"
    elif game["score"] == "B>>A":
        output["winner"] = "model_a"
        weight = multiplier
    else:
        weight = 0
    if weight:
        results += [output] * weight
    return results
