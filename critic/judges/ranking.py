"""Bradley-Terry scores from pairwise judgments: the one fit, for a group of responses and for a leaderboard.

:func:`fit_bradley_terry` is the maximum-likelihood Bradley-Terry fit every
ranking in critic uses: battles between players, each with an outcome in
[0, 1] (1: the first player won, 0.5: a tie, or a judge's probability), an
optional weight, and optional extra features (style control). P(i beats j) is
``sigmoid(s_i - s_j + features . beta)``; the fit is Newton's method on that
logistic likelihood (the construction of Chatbot Arena's ``compute_mle_elo``,
a logistic regression on +1/-1 player columns), with step halving, so the
likelihood never goes down. Scores are natural-log strengths: the anchor is 0
when there is one, otherwise the players' scores average 0.

:func:`rank` scores a GRPO group (N responses to one prompt). The judgments are
either each response against a given reference answer (N pairs) or all pairs
(N(N-1)/2); a generative judge with ``swap=True`` judges every pair in both
presentation orders itself. Each judgment is a battle whose outcome is ``p_a``,
with a small prior (``PRIOR_WINS`` virtual wins each way per judgment) so that
a response that wins everything keeps a finite score: against a reference the
reference is 0 (a score is then ``logit P(response beats the reference)``, up to
the prior); over all pairs the scores average 0.

``consistency`` is the share of judged pairs whose two presentation orders
agreed (the judge's ``consistent`` flag); ``None`` when the judge does not
judge both orders (a reward model, or ``swap=False``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from critic.errors import CriticError, InputError
from critic.judges.base import PairwiseJudge
from critic.types import Message, Pair, Preference

PRIOR_WINS = 0.1
MAX_ITERATIONS = 200
TOLERANCE = 1e-10
REFERENCE = -1  # the reference answer's index in a comparison


@dataclass(frozen=True)
class Ranking:
    """One score per response (``None`` for one with no successful judgment), and how it was reached.

    ``comparisons`` counts the pairs judged successfully (``orders`` the presentation orders
    behind them), ``failed`` those that failed; ``errors`` holds one message per failed pair.
    """

    scores: tuple[float | None, ...]
    comparisons: int
    orders: int
    failed: int
    consistency: float | None
    iterations: int
    converged: bool
    against: str  # "reference" or "all pairs"
    errors: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {"scores": list(self.scores), "comparisons": self.comparisons, "orders": self.orders,
                "failed": self.failed, "consistency": self.consistency, "iterations": self.iterations,
                "converged": self.converged, "against": self.against, "errors": list(self.errors)}


def ranking_pairs(prompt: str, responses: Sequence[str], *, reference: str | None = None,
                  history: Sequence[Message] = ()) -> tuple[list[Pair], list[tuple[int, int]]]:
    """The pairs to judge and, for each, the indices it compares (``REFERENCE`` for the reference)."""
    if reference is None and len(responses) < 2:
        raise InputError(f"ranking needs at least 2 responses (or a reference), got {len(responses)}")
    if not responses:
        raise InputError("ranking needs at least 1 response")
    history = tuple(history)
    if reference is not None:
        indices = [(i, REFERENCE) for i in range(len(responses))]
        return [Pair(prompt, text, reference, history=history) for text in responses], indices
    indices = [(i, j) for i in range(len(responses)) for j in range(i + 1, len(responses))]
    return [Pair(prompt, responses[i], responses[j], history=history) for i, j in indices], indices


def rank_results(count: int, indices: Sequence[tuple[int, int]], results: Sequence[Preference | CriticError],
                 *, max_iterations: int = MAX_ITERATIONS, tolerance: float = TOLERANCE,
                 prior: float = PRIOR_WINS) -> Ranking:
    """The :class:`Ranking` of ``count`` responses from the judged pairs ``indices`` -> ``results``.

    ``prior`` is the virtual wins each way added to every judged pair (0: the plain maximum-likelihood fit,
    infinite for a response that wins everything).
    """
    if max_iterations < 0 or prior < 0:
        raise InputError(f"max_iterations and prior must be >= 0, got {max_iterations} and {prior}")
    anchored = any(j == REFERENCE for _, j in indices)
    first: list[int] = []
    second: list[int] = []
    outcomes: list[float] = []
    comparisons = orders = 0
    consistent: list[bool] = []
    errors: list[str] = []
    for (i, j), result in zip(indices, results, strict=True):
        if isinstance(result, CriticError):
            errors.append(str(result))
            continue
        comparisons += 1
        orders += len(result.orders)
        if result.consistent is not None:
            consistent.append(result.consistent)
        first.append(i)
        second.append(count if j == REFERENCE else j)
        # p_a + prior wins for i and 1 - p_a + prior for j: one battle of weight 1 + 2 prior
        outcomes.append((result.p_a + prior) / (1.0 + 2.0 * prior))
    fit = fit_bradley_terry(count + (1 if anchored else 0), first, second, outcomes,
                            weights=[1.0 + 2.0 * prior] * len(outcomes), anchor=count if anchored else None,
                            max_iterations=max_iterations, tolerance=tolerance)
    return Ranking(scores=fit.scores[:count], comparisons=comparisons, orders=orders, failed=len(errors),
                   consistency=sum(consistent) / len(consistent) if consistent else None,
                   iterations=fit.iterations, converged=fit.converged,
                   against="reference" if anchored else "all pairs", errors=tuple(errors))


def rank(judge: PairwiseJudge, prompt: str, responses: Sequence[str], *, reference: str | None = None,
         history: Sequence[Message] = (), max_iterations: int = MAX_ITERATIONS) -> Ranking:
    """Rank ``responses`` to ``prompt`` in-process with ``judge`` (see the module's description)."""
    pairs, indices = ranking_pairs(prompt, responses, reference=reference, history=history)
    return rank_results(len(responses), indices, judge.compare_each(pairs), max_iterations=max_iterations)


@dataclass(frozen=True)
class BradleyTerryFit:
    """A Bradley-Terry fit: one score per player (``None`` for a player in no battle), one coefficient per feature.

    ``converged`` is False when the iterations ran out first: then a maximum-likelihood score may not exist
    (a player that won, or lost, every battle has an infinite one) and the scores are where the fit stopped.
    """

    scores: tuple[float | None, ...]
    coefficients: tuple[float, ...]
    iterations: int
    converged: bool


def fit_bradley_terry(
    players: int,
    first: Sequence[int],
    second: Sequence[int],
    outcomes: Sequence[float],
    *,
    weights: Sequence[float] | None = None,
    features: Sequence[Sequence[float]] | None = None,
    anchor: int | None = None,
    l1: float = 0.0,
    max_iterations: int = MAX_ITERATIONS,
    tolerance: float = TOLERANCE,
) -> BradleyTerryFit:
    """The maximum-likelihood Bradley-Terry scores of ``players`` from battles ``first[k]`` vs ``second[k]``.

    ``outcomes[k]`` in [0, 1] is how much the first player won battle k (a judge's probability, or 1 / 0.5 / 0),
    ``weights[k]`` (default 1) how much the battle counts, and ``features[k]`` (style control) extra columns
    whose coefficients are fitted beside the scores. The ``anchor`` player's score is 0; without one, the
    scores of the players that fought average 0. ``l1`` > 0 penalises the log-likelihood by ``l1`` times the sum
    of the absolute parameters (scores and coefficients; AlpacaEval's length-controlled GLM: liblinear's L1 with
    ``C = 1 / l1``). Iterates until no parameter moves more than ``tolerance``.
    """
    import numpy as np

    a: Any = np.asarray(first, dtype=np.int64)
    b: Any = np.asarray(second, dtype=np.int64)
    y: Any = np.asarray(outcomes, dtype=np.float64)
    w: Any = np.ones_like(y) if weights is None else np.asarray(weights, dtype=np.float64)
    extra: Any = np.zeros((len(y), 0))
    if features is not None:
        extra = np.asarray(features, dtype=np.float64).reshape(len(y), -1)
    if l1 < 0 or not (len(a) == len(b) == len(y) == len(w)) or np.any((y < 0) | (y > 1)) or np.any(w < 0):
        raise InputError("battles need one first player, second player, outcome in [0, 1] and weight >= 0 each "
                         "(and the L1 penalty must be >= 0)")
    if len(a) and (min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= players):
        raise InputError(f"a battle names a player outside 0..{players - 1}")
    if features is None:  # the sufficient statistics of plain BT: weight and wins per ordered pair
        pair_ids, position = np.unique(a * players + b, return_inverse=True)
        total = np.bincount(position, weights=w)
        y = np.bincount(position, weights=w * y) / np.where(total > 0, total, 1.0)
        a, b, w, extra = pair_ids // players, pair_ids % players, total, np.zeros((len(pair_ids), 0))
    fought = np.zeros(players, dtype=bool)
    fought[a[w > 0]] = fought[b[w > 0]] = True
    pinned = anchor if anchor is not None and fought[anchor] else None
    free = [p for p in range(players) if fought[p] and p != pinned]
    design = np.zeros((len(y), len(free) + extra.shape[1]))
    column = np.full(players, -1)
    column[free] = np.arange(len(free))
    rows = np.arange(len(y))
    for side, sign in ((a, 1.0), (b, -1.0)):
        placed = column[side] >= 0
        np.add.at(design, (rows[placed], column[side][placed]), sign)
    design[:, len(free):] = extra
    theta, iterations, converged = _newton_logistic(design, y, w, max_iterations=max_iterations, tolerance=tolerance,
                                                    l1=l1)
    scores = np.zeros(players)
    scores[free] = theta[: len(free)]
    if pinned is None and fought.any():
        scores[fought] -= scores[fought].mean()
    return BradleyTerryFit(scores=tuple(float(scores[p]) if fought[p] else None for p in range(players)),
                           coefficients=tuple(float(value) for value in theta[len(free):]),
                           iterations=iterations, converged=converged)


def _newton_logistic(design: Any, y: Any, w: Any, *, max_iterations: int, tolerance: float,
                     l1: float = 0.0) -> tuple[Any, int, bool]:
    """Maximise sum w (y log s + (1 - y) log(1 - s)) - l1 |theta|_1, s = sigmoid(design . theta), from 0.

    Newton's method with step halving (the objective never goes down). A singular Hessian (players in
    separate groups that never met, a feature that never varies) takes the least-squares step, so those
    directions stay where they started. With an L1 penalty each step minimises the penalised quadratic model
    by coordinate descent (soft thresholding), as glmnet does.
    """
    import numpy as np

    theta = np.zeros(design.shape[1])
    if design.shape[1] == 0:
        return theta, 0, True

    def objective(values: Any) -> float:
        z = design @ values
        fit = float(np.sum(w * (y * -np.logaddexp(0.0, -z) + (1.0 - y) * -np.logaddexp(0.0, z))))
        return fit - l1 * float(np.sum(np.abs(values)))

    current = objective(theta)
    for iteration in range(1, max_iterations + 1):
        s = 0.5 * (1.0 + np.tanh(0.5 * (design @ theta)))  # the logistic function, without overflow
        gradient = design.T @ (w * (y - s))
        hessian = (design * (w * s * (1.0 - s))[:, None]).T @ design
        if l1:
            step = _l1_step(theta, gradient, hessian, l1, tolerance)
        else:
            step = np.linalg.lstsq(hessian, gradient, rcond=None)[0]
        size = 1.0
        while True:
            candidate = theta + size * step
            value = objective(candidate)
            if value >= current - 1e-12 * abs(current) or size < 1e-10:
                break
            size /= 2.0
        moved = float(np.max(np.abs(candidate - theta)))
        theta, current = candidate, value
        if moved < tolerance:
            return theta, iteration, True
    return theta, max_iterations, False


def _l1_step(theta: Any, gradient: Any, hessian: Any, l1: float, tolerance: float) -> Any:
    """The step to the minimum of -gradient.d + d'Hd/2 + l1 |theta + d|_1, by cyclic coordinate descent."""
    import numpy as np

    target = theta.copy()
    for _ in range(10_000):
        largest = 0.0
        for j in range(len(theta)):
            curvature = hessian[j, j]
            if curvature <= 0.0:
                continue
            slope = -gradient[j] + hessian[j] @ (target - theta) - curvature * (target[j] - theta[j])
            free = theta[j] - slope / curvature
            value = np.sign(free) * max(abs(free) - l1 / curvature, 0.0)
            largest = max(largest, abs(value - target[j]))
            target[j] = value
        if largest < tolerance / 10:
            break
    return target - theta
