"""Position-swap debiasing: merging a pair's per-order judgments, as pure functions.

A judge model tends to prefer whichever answer it sees first (or second). Asking
in both orders and merging cancels that bias out of the probability and exposes
it in the label: when the two orders disagree the pair is a tie, not a guess.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from critic.errors import CriticError
from critic.types import Label, Order, OrderJudgment, Preference


def order_from_letter_probs(
    order: Order,
    probs: Mapping[str, float],
    *,
    format_mass: float | None = None,
    text: str | None = None,
    forced: bool = False,
) -> OrderJudgment:
    """Turn the model's letter probabilities for one order into an :class:`OrderJudgment`.

    ``probs`` maps the verdict letters the template allows (A, B and maybe C)
    to probabilities; they are normalised here. The verdict is their argmax.
    """
    total = sum(probs.values())
    if not total > 0:
        raise CriticError(f"letter probabilities sum to {total}; cannot normalise {dict(probs)}")
    shown = {letter: value / total for letter, value in probs.items()}
    verdict = max(shown, key=lambda letter: (shown[letter], letter == "A"))
    return _judgment(order, verdict, shown, format_mass=format_mass, text=text, forced=forced)


def order_from_verdict(
    order: Order, verdict: str, *, text: str | None = None, forced: bool = False
) -> OrderJudgment:
    """An order judged by a hard verdict (constrained or generated): probability 1 on it."""
    shown = {letter: 1.0 if letter == verdict else 0.0 for letter in ("A", "B", "C")}
    return _judgment(order, verdict, shown, text=text, forced=forced)


def _judgment(
    order: Order,
    verdict: str,
    shown: Mapping[str, float],
    *,
    format_mass: float | None = None,
    text: str | None = None,
    forced: bool = False,
) -> OrderJudgment:
    first, second = shown.get("A", 0.0), shown.get("B", 0.0)
    p_a, p_b = (first, second) if order == "ab" else (second, first)
    return OrderJudgment(
        order=order,
        verdict=verdict,  # type: ignore[arg-type]
        p_a=p_a,
        p_b=p_b,
        p_tie=shown.get("C", 0.0),
        format_mass=format_mass,
        text=text,
        forced=forced,
    )


def merge_orders(orders: Sequence[OrderJudgment]) -> Preference:
    """Merge one or two order judgments of the same pair into a :class:`Preference`.

    ``p_a`` is the mean over orders. With two orders the label is their shared
    outcome when they agree (``consistent=True``) and ``"tie"`` when they do not;
    a tie verdict in either order therefore gives a tie. With one order the label
    is that order's outcome and ``consistent`` is ``None`` (nothing to compare).
    """
    if len(orders) not in (1, 2):
        raise CriticError(f"a pair is judged in one or two orders, got {len(orders)}")
    if len(orders) == 2 and {o.order for o in orders} != {"ab", "ba"}:
        raise CriticError("two order judgments must be one 'ab' and one 'ba'")
    p_a = sum(o.p_a for o in orders) / len(orders)
    if len(orders) == 1:
        return Preference(label=orders[0].outcome, p_a=p_a, consistent=None, orders=tuple(orders))
    first, second = orders[0].outcome, orders[1].outcome
    consistent = first == second
    label: Label = first if consistent else "tie"
    return Preference(label=label, p_a=p_a, consistent=consistent, orders=tuple(orders))
