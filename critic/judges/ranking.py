"""Ranking a group of responses to one prompt from pairwise judgments (Bradley-Terry).

A GRPO group (N responses to one prompt) gets one score per response. The
judgments are either each response against a given reference answer (N pairs)
or all pairs (N(N-1)/2); a generative judge with ``swap=True`` judges every pair
in both presentation orders itself. Each judgment counts as soft wins: response
i beats j with ``p_a`` and loses with ``1 - p_a``. The Bradley-Terry strengths
are fitted by the MM (Zermelo) iteration, a bounded number of rounds, with a
small prior (``PRIOR_WINS`` virtual wins each way per pair) so that a response
that wins everything keeps a finite score. A score is the log-strength: against
a reference the reference is 0 (a score is then ``logit P(response beats the
reference)``, up to the prior); over all pairs the scores average 0.

``consistency`` is the share of judged pairs whose two presentation orders
agreed (the judge's ``consistent`` flag); ``None`` when the judge does not
judge both orders (a reward model, or ``swap=False``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from critic.errors import CriticError, InputError
from critic.judges.base import PairwiseJudge
from critic.types import Message, Pair, Preference

PRIOR_WINS = 0.1
MAX_ITERATIONS = 200
TOLERANCE = 1e-8
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
    size = count + (1 if anchored else 0)
    wins = [[0.0] * size for _ in range(size)]
    judged = [False] * size
    comparisons = orders = 0
    consistent: list[bool] = []
    errors: list[str] = []
    for (i, j), result in zip(indices, results, strict=True):
        j = count if j == REFERENCE else j
        if isinstance(result, CriticError):
            errors.append(str(result))
            continue
        comparisons += 1
        orders += len(result.orders)
        if result.consistent is not None:
            consistent.append(result.consistent)
        wins[i][j] += result.p_a + prior
        wins[j][i] += 1.0 - result.p_a + prior
        judged[i] = judged[j] = True
    strengths, iterations, converged = _fit(wins, judged, anchor=count if anchored else None,
                                            max_iterations=max_iterations, tolerance=tolerance)
    scores = tuple(math.log(strengths[i]) if judged[i] else None for i in range(count))
    return Ranking(scores=scores, comparisons=comparisons, orders=orders, failed=len(errors),
                   consistency=sum(consistent) / len(consistent) if consistent else None,
                   iterations=iterations, converged=converged,
                   against="reference" if anchored else "all pairs", errors=tuple(errors))


def rank(judge: PairwiseJudge, prompt: str, responses: Sequence[str], *, reference: str | None = None,
         history: Sequence[Message] = (), max_iterations: int = MAX_ITERATIONS) -> Ranking:
    """Rank ``responses`` to ``prompt`` in-process with ``judge`` (see the module's description)."""
    pairs, indices = ranking_pairs(prompt, responses, reference=reference, history=history)
    return rank_results(len(responses), indices, judge.compare_each(pairs), max_iterations=max_iterations)


def _fit(wins: list[list[float]], judged: list[bool], *, anchor: int | None, max_iterations: int,
         tolerance: float) -> tuple[list[float], int, bool]:
    """MM iteration: p_i <- W_i / sum_j n_ij / (p_i + p_j); the anchor stays 1, else the geometric mean is 1."""
    size = len(wins)
    games = [[wins[i][j] + wins[j][i] for j in range(size)] for i in range(size)]
    total_wins = [sum(row) for row in wins]
    strengths = [1.0] * size
    for iteration in range(1, max_iterations + 1):
        new = list(strengths)
        for i in range(size):
            if i == anchor or not judged[i]:
                continue
            denominator = sum(games[i][j] / (strengths[i] + strengths[j]) for j in range(size) if games[i][j])
            new[i] = total_wins[i] / denominator if denominator else strengths[i]
        if anchor is None:
            live = [math.log(new[i]) for i in range(size) if judged[i]]
            shift = math.exp(sum(live) / len(live)) if live else 1.0
            new = [value / shift for value in new]
        change = max(abs(math.log(a) - math.log(b)) for a, b in zip(new, strengths, strict=True))
        strengths = new
        if change < tolerance:
            return strengths, iteration, True
    return strengths, max_iterations, False
