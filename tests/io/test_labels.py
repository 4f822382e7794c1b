"""critic.io.labels: the one label vocabulary, read the same way by every command."""

from __future__ import annotations

import pytest

from critic.errors import InputError, Reason
from critic.io.labels import (
    ACCEPTED_LABELS,
    flipped_label,
    label_or_none,
    majority_label,
    negated,
    one_hot_label,
    other_spelling,
    parse_label,
    sign_for,
)

SPELLINGS = {
    "A": ["A", "a", " a ", 1, "1", "response_a", "Response_A", "response1", "RESPONSE1", "model_a", "Model_A",
          1.0, "1.0", " 1.0 "],  # pandas writes an integer column with a missing value as floats: 1.0
    "B": ["B", "b", 2, "2", "response_b", "response2", "model_b", "MODEL_B", "\tb\n", 2.0, "2.0"],
    "tie": ["tie", "TIE", "Tie", 0, "0", "draw", "Draw", "tie (bothbad)", "Tie (BothBad)", "c", "C", 0.0, "0.0",
            -0.0],
}


@pytest.mark.parametrize(("value", "label"), [(v, label) for label, values in SPELLINGS.items() for v in values])
def test_parse_label_reads_every_accepted_spelling(value, label):
    assert parse_label(value) == label


@pytest.mark.parametrize("value", ["both", "neither", "none", "None", "garbage", "first", "", "A or B",
                                   "response_c", True, False, None, ["A"], {"label": "A"}, "nan", float("nan")])
def test_anything_else_is_an_unknown_label_with_the_same_message(value):
    with pytest.raises(InputError) as caught:
        parse_label(value, "winner")
    assert caught.value.kind == Reason.UNKNOWN_LABEL
    assert str(caught.value) == f"field 'winner' is {value!r}; expected {ACCEPTED_LABELS}"
    assert label_or_none(value) is None  # another judge's unreadable prediction is a failed one


@pytest.mark.parametrize("value", ["3", 3, -1, "-2", 1.5, "2.5", -3.0, 10**400])
def test_other_numbers_are_refused_and_the_message_names_the_signed_rule(value):
    """Before: HelpSteer2's +1 read as A (backwards) and -1 was only "unknown label"; a sign is never guessed."""
    with pytest.raises(InputError) as caught:
        parse_label(value, "score")
    assert caught.value.kind == Reason.UNKNOWN_LABEL
    message = str(caught.value)
    assert message.startswith(f"field 'score' is {value!r}"[:40]) and ACCEPTED_LABELS in message
    if value != 10**400:
        assert "--label-sign negative-is-a (negative: the first answer is better) or negative-is-b" in message


@pytest.mark.parametrize(("value", "a_first", "b_first"), [
    (-3, "A", "B"), (-1, "A", "B"), ("-2", "A", "B"), (-0.5, "A", "B"), (0, "tie", "tie"), ("0", "tie", "tie"),
    (1, "B", "A"), (3, "B", "A"), ("2.0", "B", "A"),
])
def test_signed_strengths_read_only_under_a_stated_sign(value, a_first, b_first):
    assert parse_label(value, sign="negative-is-a") == a_first
    assert parse_label(value, sign="negative-is-b") == b_first
    assert parse_label("tie", sign="negative-is-a") == "tie"  # words keep their meaning


def test_the_signed_columns_carry_their_datasets_rule_and_a_flag_overrides_it():
    assert sign_for("preference_strength", None) == "negative-is-a"  # HelpSteer2: negative = response_1 better
    assert sign_for("overall_preference", None) == "negative-is-a"  # HelpSteer3, same convention
    assert sign_for("preference_strength", "negative-is-b") == "negative-is-b"
    assert sign_for("label", None) is None and sign_for(None, None) is None


@pytest.mark.parametrize(("value", "flipped"), [(-2, 2), (3, -3), (0, 0), ("-1", "1"), ("2", "-2"), (1.5, -1.5),
                                                 ("-2.0", "2.0"), ("A", "B")])
def test_a_signed_label_is_relabelled_by_negating_it(value, flipped):
    assert negated(value) == flipped if value != "A" else negated(value) == "A"
    assert flipped_label(value, "negative-is-a") == flipped


@pytest.mark.parametrize(("values", "label"), [
    ((1, 0, 0), "A"), ((0, 1, 0), "B"), ((0, 0, 1), "tie"), (("0", "1", "0"), "B"), ((0.0, 0.0, 1.0), "tie"),
    ((False, True, False), "B"), (("1.0", "0.0", "0.0"), "A"),
])
def test_one_hot_columns_are_read_together(values, label):
    row = dict(zip(("winner_model_a", "winner_model_b", "winner_tie"), values, strict=True))
    assert one_hot_label(row) == label


@pytest.mark.parametrize(("values", "said"), [
    ((0, 0, 0), "none of them is set"), ((1, 1, 0), "several are set"), ((1, 0, 1), "several are set"),
    ((2, 0, 0), "holds 1 or 0"), (("yes", 0, 0), "holds 1 or 0"), ((None, 1, 0), "holds 1 or 0"),
])
def test_an_ambiguous_or_invalid_one_hot_row_is_refused_with_a_reason(values, said):
    row = dict(zip(("winner_model_a", "winner_model_b", "winner_tie"), values, strict=True))
    with pytest.raises(InputError, match=said) as caught:
        one_hot_label(row)
    assert caught.value.kind == Reason.UNKNOWN_LABEL


def test_label_or_none_reads_what_parse_label_reads():
    assert [label_or_none(v) for v in ("1", 2, "Tie", "garbage")] == ["A", "B", "tie", None]


@pytest.mark.parametrize(("value", "other"), [
    ("A", "B"), ("b", "a"), ("response_a", "response_b"), ("MODEL_B", "MODEL_A"), ("response1", "response2"),
    ("Response2", "response1"), (1, 2), (2, 1), ("1", "2"), ("tie", "tie"), (0, 0), ("???", "???"),
    (1.0, 2.0), ("2.0", "1.0"),
])
def test_other_spelling_names_the_other_response_the_same_way(value, other):
    assert other_spelling(value) == other
    opposite = {"A": "B", "B": "A", "tie": "tie", None: None}
    assert label_or_none(other) == opposite[label_or_none(value)]


@pytest.mark.parametrize(
    ("votes", "label"),
    [((1, 1, 2), "A"), ((2, 2, 2), "B"), ((0, 0, 1), "tie"), ((1, 2, 0), "tie"), ((2, 0, 2), "B")],
)
def test_majority_label(votes, label):
    assert majority_label(votes) == label
