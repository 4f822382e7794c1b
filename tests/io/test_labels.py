"""critic.io.labels: the one label vocabulary, read the same way by every command."""

from __future__ import annotations

import pytest

from critic.errors import InputError, Reason
from critic.io.labels import ACCEPTED_LABELS, label_or_none, majority_label, other_spelling, parse_label

SPELLINGS = {
    "A": ["A", "a", " a ", 1, "1", "response_a", "Response_A", "response1", "RESPONSE1", "model_a", "Model_A"],
    "B": ["B", "b", 2, "2", "response_b", "response2", "model_b", "MODEL_B", "\tb\n"],
    "tie": ["tie", "TIE", "Tie", 0, "0", "draw", "Draw", "tie (bothbad)", "Tie (BothBad)", "c", "C"],
}


@pytest.mark.parametrize(("value", "label"), [(v, label) for label, values in SPELLINGS.items() for v in values])
def test_parse_label_reads_every_accepted_spelling(value, label):
    assert parse_label(value) == label


@pytest.mark.parametrize("value", ["both", "neither", "none", "None", "garbage", "first", "", "3", "A or B",
                                   "response_c", True, False, None, 3, -1, 1.0, 2.0, ["A"], {"label": "A"}])
def test_anything_else_is_an_unknown_label_with_the_same_message(value):
    with pytest.raises(InputError) as caught:
        parse_label(value, "winner")
    assert caught.value.kind == Reason.UNKNOWN_LABEL
    assert str(caught.value) == f"field 'winner' is {value!r}; expected {ACCEPTED_LABELS}"
    assert label_or_none(value) is None  # another judge's unreadable prediction is a failed one


def test_label_or_none_reads_what_parse_label_reads():
    assert [label_or_none(v) for v in ("1", 2, "Tie", "garbage")] == ["A", "B", "tie", None]


@pytest.mark.parametrize(("value", "other"), [
    ("A", "B"), ("b", "a"), ("response_a", "response_b"), ("MODEL_B", "MODEL_A"), ("response1", "response2"),
    ("Response2", "response1"), (1, 2), (2, 1), ("1", "2"), ("tie", "tie"), (0, 0), ("???", "???"),
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
