"""Position-swap merging as pure functions: no model, no backend."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from critic import CriticError, OrderJudgment
from critic.merge import merge_orders
from critic.merge import order_from_letter_probs, order_from_verdict

# --------------------------------------------------------------------------- one order from letter probabilities


@pytest.mark.parametrize(
    ("order", "probs", "verdict", "p_a", "p_b", "p_tie"),
    [
        pytest.param("ab", {"A": 0.8, "B": 0.2}, "A", 0.8, 0.2, 0.0, id="ab-A-wins"),
        pytest.param("ab", {"A": 0.3, "B": 0.7}, "B", 0.3, 0.7, 0.0, id="ab-B-wins"),
        # In order "ba" response_a was shown as B, so shown-B probability is p_a.
        pytest.param("ba", {"A": 0.8, "B": 0.2}, "A", 0.2, 0.8, 0.0, id="ba-shown-A-is-response_b"),
        pytest.param("ba", {"A": 0.3, "B": 0.7}, "B", 0.7, 0.3, 0.0, id="ba-shown-B-is-response_a"),
        pytest.param("ab", {"A": 0.2, "B": 0.05}, "A", 0.8, 0.2, 0.0, id="ab-normalised"),
        pytest.param("ba", {"A": 0.06, "B": 0.02}, "A", 0.25, 0.75, 0.0, id="ba-normalised"),
        pytest.param("ab", {"A": 0.1, "B": 0.15, "C": 0.25}, "C", 0.2, 0.3, 0.5, id="ab-tie-letter-wins"),
        pytest.param("ab", {"A": 0.1, "B": 0.1, "C": 0.3}, "C", 0.2, 0.2, 0.6, id="ab-tie-argmax"),
        pytest.param("ba", {"A": 0.1, "B": 0.3, "C": 0.1}, "B", 0.6, 0.2, 0.2, id="ba-with-tie-letter"),
    ],
)
def test_order_from_letter_probs(
    order: str, probs: dict[str, float], verdict: str, p_a: float, p_b: float, p_tie: float
) -> None:
    judged = order_from_letter_probs(order, probs)  # type: ignore[arg-type]
    assert judged.order == order
    assert judged.verdict == verdict
    assert judged.p_a == pytest.approx(p_a)
    assert judged.p_b == pytest.approx(p_b)
    assert judged.p_tie == pytest.approx(p_tie)
    assert judged.p_a + judged.p_b + judged.p_tie == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("probs", "verdict"),
    [
        pytest.param({"A": 0.9, "B": 0.1}, "A", id="A"),
        pytest.param({"A": 0.1, "B": 0.9}, "B", id="B"),
        pytest.param({"A": 0.2, "B": 0.3, "C": 0.5}, "C", id="C"),
        pytest.param({"A": 0.3, "B": 0.5, "C": 0.2}, "B", id="B-of-three"),
    ],
)
def test_verdict_is_argmax_of_shown_letters(probs: dict[str, float], verdict: str) -> None:
    # The verdict is about the letters as shown, so it does not depend on the order.
    assert order_from_letter_probs("ab", probs).verdict == verdict
    assert order_from_letter_probs("ba", probs).verdict == verdict


def test_letter_probs_keep_details() -> None:
    judged = order_from_letter_probs("ba", {"A": 0.3, "B": 0.1}, format_mass=0.4, text="t", forced=True)
    assert judged.format_mass == 0.4
    assert judged.text == "t"
    assert judged.forced is True


@pytest.mark.parametrize(
    "probs",
    [
        pytest.param({"A": 0.0, "B": 0.0}, id="all-zero"),
        pytest.param({}, id="empty"),
        pytest.param({"A": math.nan, "B": 0.5}, id="nan"),
    ],
)
def test_letter_probs_that_cannot_be_normalised(probs: dict[str, float]) -> None:
    with pytest.raises(CriticError, match="cannot normalise"):
        order_from_letter_probs("ab", probs)


@pytest.mark.parametrize(
    ("order", "verdict", "p_a", "p_b", "p_tie", "outcome"),
    [
        pytest.param("ab", "A", 1.0, 0.0, 0.0, "A", id="ab-A"),
        pytest.param("ab", "B", 0.0, 1.0, 0.0, "B", id="ab-B"),
        pytest.param("ba", "A", 0.0, 1.0, 0.0, "B", id="ba-A"),
        pytest.param("ba", "B", 1.0, 0.0, 0.0, "A", id="ba-B"),
        pytest.param("ab", "C", 0.0, 0.0, 1.0, "tie", id="ab-C"),
        pytest.param("ba", "C", 0.0, 0.0, 1.0, "tie", id="ba-C"),
    ],
)
def test_order_from_verdict(order: str, verdict: str, p_a: float, p_b: float, p_tie: float, outcome: str) -> None:
    judged = order_from_verdict(order, verdict, text="[[x]]", forced=True)  # type: ignore[arg-type]
    assert (judged.p_a, judged.p_b, judged.p_tie) == (p_a, p_b, p_tie)
    assert judged.outcome == outcome
    assert judged.text == "[[x]]"
    assert judged.forced is True


# --------------------------------------------------------------------------- merging


def _ab(p_first: float) -> OrderJudgment:
    return order_from_letter_probs("ab", {"A": p_first, "B": 1.0 - p_first})


def _ba(p_first: float) -> OrderJudgment:
    return order_from_letter_probs("ba", {"A": p_first, "B": 1.0 - p_first})


@pytest.mark.parametrize(
    ("orders", "label", "consistent", "p_a"),
    [
        # ab: A shown first wins 0.9 -> response_a; ba: B shown second wins 0.8 -> response_a.
        pytest.param((_ab(0.9), _ba(0.2)), "A", True, 0.85, id="agree-on-A"),
        pytest.param((_ab(0.3), _ba(0.6)), "B", True, 0.35, id="agree-on-B"),
        pytest.param((_ba(0.2), _ab(0.9)), "A", True, 0.85, id="agree-ba-listed-first"),
        # Pure first-position bias: each order prefers what it showed first.
        pytest.param((_ab(0.8), _ba(0.8)), "tie", False, 0.5, id="first-position-bias"),
        pytest.param((_ab(0.2), _ba(0.2)), "tie", False, 0.5, id="second-position-bias"),
        pytest.param((_ab(0.7), _ba(0.9)), "tie", False, 0.4, id="disagree-uneven"),
        pytest.param(
            (order_from_verdict("ab", "C"), order_from_verdict("ba", "B")), "tie", False, 0.5, id="tie-in-ab"
        ),
        pytest.param(
            (order_from_verdict("ab", "A"), order_from_verdict("ba", "C")), "tie", False, 0.5, id="tie-in-ba"
        ),
        pytest.param(
            (order_from_verdict("ab", "C"), order_from_verdict("ba", "C")), "tie", True, 0.0, id="both-tie"
        ),
        pytest.param(
            (order_from_verdict("ab", "A"), order_from_verdict("ba", "B")), "A", True, 1.0, id="hard-verdicts-agree"
        ),
    ],
)
def test_merge_two_orders(orders: tuple[OrderJudgment, ...], label: str, consistent: bool, p_a: float) -> None:
    merged = merge_orders(orders)
    assert merged.label == label
    assert merged.consistent is consistent
    assert merged.p_a == pytest.approx(p_a)
    assert merged.orders == orders


@pytest.mark.parametrize(
    ("order", "label", "p_a"),
    [
        pytest.param(_ab(0.7), "A", 0.7, id="ab-A"),
        pytest.param(_ab(0.4), "B", 0.4, id="ab-B"),
        pytest.param(_ba(0.7), "B", 0.3, id="ba-B"),
        pytest.param(order_from_verdict("ab", "C"), "tie", 0.0, id="ab-tie"),
    ],
)
def test_merge_one_order(order: OrderJudgment, label: str, p_a: float) -> None:
    merged = merge_orders([order])
    assert merged.label == label
    assert merged.consistent is None
    assert merged.p_a == pytest.approx(p_a)
    assert merged.orders == (order,)


@pytest.mark.parametrize(
    "orders",
    [
        pytest.param([], id="no-orders"),
        pytest.param([_ab(0.5), _ba(0.5), _ab(0.5)], id="three-orders"),
        pytest.param([_ab(0.9), _ab(0.1)], id="two-ab"),
        pytest.param([_ba(0.9), _ba(0.1)], id="two-ba"),
    ],
)
def test_merge_rejects_bad_inputs(orders: list[OrderJudgment]) -> None:
    with pytest.raises(CriticError):
        merge_orders(orders)


# --------------------------------------------------------------------------- property

probability = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
positive = st.floats(min_value=1e-6, max_value=1.0, allow_nan=False)


@st.composite
def letter_probs(draw: st.DrawFn) -> dict[str, float]:
    probs = {"A": draw(probability), "B": draw(probability)}
    if draw(st.booleans()):
        probs["C"] = draw(probability)
    if sum(probs.values()) <= 0:
        probs["A"] = draw(positive)
    return probs


@given(first=letter_probs(), second=letter_probs(), ba_first=st.booleans())
def test_merge_property(first: dict[str, float], second: dict[str, float], ba_first: bool) -> None:
    ab = order_from_letter_probs("ab", first)
    ba = order_from_letter_probs("ba", second)
    for judged in (ab, ba):
        assert 0.0 <= judged.p_a <= 1.0
        assert judged.p_a + judged.p_b + judged.p_tie == pytest.approx(1.0)
    orders = (ba, ab) if ba_first else (ab, ba)
    merged = merge_orders(orders)
    assert 0.0 <= merged.p_a <= 1.0
    assert merged.p_a == pytest.approx((ab.p_a + ba.p_a) / 2)
    assert merged.consistent is (ab.outcome == ba.outcome)
    if merged.consistent is False:
        assert merged.label == "tie"
    else:
        assert merged.label == ab.outcome
