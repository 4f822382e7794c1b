"""Pairs in, preferences out: critic.types."""

from __future__ import annotations

import json

import pytest

from critic import InputError, OrderJudgment, Pair, Preference
from critic.errors import Reason
from critic.types import check_conversation, check_messages, conversation

LONE_SURROGATE = json.loads('"broken \\ud800 text"')  # valid JSON, invalid Unicode

# --------------------------------------------------------------------------- Pair validation


@pytest.mark.parametrize(
    ("kwargs", "field", "type_name"),
    [
        pytest.param({"prompt": 1}, "prompt", "int", id="int-prompt"),
        pytest.param({"response_a": None}, "response_a", "NoneType", id="none-response_a"),
        pytest.param({"response_b": ["x"]}, "response_b", "list", id="list-response_b"),
        pytest.param({"response_a": b"bytes"}, "response_a", "bytes", id="bytes-response_a"),
        pytest.param({"reference": 3.5}, "reference", "float", id="float-reference"),
        pytest.param({"prompt": True}, "prompt", "bool", id="bool-prompt"),
    ],
)
def test_pair_rejects_non_string_fields(kwargs: dict, field: str, type_name: str) -> None:
    values = {"prompt": "q", "response_a": "a", "response_b": "b", "reference": None, **kwargs}
    with pytest.raises(InputError) as caught:
        Pair(**values)
    message = str(caught.value)
    assert f"'{field}'" in message
    assert type_name in message


def test_input_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        Pair(1, "a", "b")  # type: ignore[arg-type]


def test_pair_accepts_strings_and_optional_reference() -> None:
    assert Pair("q", "a", "b").reference is None
    assert Pair("q", "a", "b", "r").reference == "r"
    assert Pair("", "", "").prompt == ""


def test_pair_is_frozen() -> None:
    pair = Pair("q", "a", "b")
    with pytest.raises(AttributeError):
        pair.prompt = "other"  # type: ignore[misc]


def test_swapped() -> None:
    pair = Pair("q", "first", "second", "ref")
    swapped = pair.swapped()
    assert swapped == Pair("q", "second", "first", "ref")
    assert swapped.swapped() == pair
    assert pair == Pair("q", "first", "second", "ref")  # the original is unchanged


def test_swapped_swaps_the_two_conversations_and_keeps_the_shared_turns() -> None:
    # MT-Bench turn 2: each answer's own first turn; the reference conversation belongs to neither answer.
    own_a = ({"role": "user", "content": "q1"}, {"role": "assistant", "content": "a1"})
    own_b = ({"role": "user", "content": "q1"}, {"role": "assistant", "content": "b1"})
    shared = ({"role": "system", "content": "s"},)
    references = ({"role": "user", "content": "q1"}, {"role": "assistant", "content": "r1"})
    pair = Pair("q2", "a2", "b2", "r2", shared, history_a=own_a, history_b=own_b, reference_history=references)
    swapped = pair.swapped()
    assert swapped == Pair("q2", "b2", "a2", "r2", shared, history_a=own_b, history_b=own_a,
                           reference_history=references)
    assert swapped.swapped() == pair


@pytest.mark.parametrize("field", ["history", "history_a", "history_b", "reference_history"])
def test_every_message_field_is_checked_and_named(field: str) -> None:
    with pytest.raises(InputError, match=f"pair field '{field}'\\[0\\] has role 'judge'") as caught:
        Pair("q", "a", "b", **{field: [{"role": "judge", "content": "x"}]})
    assert caught.value.kind is Reason.BAD_MESSAGES
    assert getattr(Pair("q", "a", "b", **{field: [{"role": "user", "content": "x"}]}), field) == (
        {"role": "user", "content": "x"},
    )


# --------------------------------------------------------------------------- Pair.from_mapping


def test_from_mapping_default_fields() -> None:
    row = {"prompt": "q", "response_a": "a", "response_b": "b", "reference": "r", "extra": 1}
    assert Pair.from_mapping(row) == Pair("q", "a", "b", "r")


def test_from_mapping_without_reference() -> None:
    assert Pair.from_mapping({"prompt": "q", "response_a": "a", "response_b": "b"}) == Pair("q", "a", "b")


def test_from_mapping_null_reference_is_none() -> None:
    row = {"prompt": "q", "response_a": "a", "response_b": "b", "reference": None}
    assert Pair.from_mapping(row).reference is None


def test_from_mapping_renamed_fields() -> None:
    row = {"instruction": "q", "response1": "one", "response2": "two", "gold": "g", "prompt": "ignored"}
    pair = Pair.from_mapping(
        row,
        prompt_field="instruction",
        response_a_field="response1",
        response_b_field="response2",
        reference_field="gold",
    )
    assert pair == Pair("q", "one", "two", "g")


@pytest.mark.parametrize(
    ("row", "kwargs", "missing", "present"),
    [
        pytest.param(
            {"prompt": "q", "response_a": "a"}, {}, "response_b", "prompt, response_a", id="missing-response_b"
        ),
        pytest.param(
            {"question": "q", "response_a": "a", "response_b": "b"},
            {},
            "prompt",
            "question, response_a, response_b",
            id="misnamed-prompt",
        ),
        pytest.param(
            {"prompt": "q", "response_a": "a", "response_b": "b"},
            {"prompt_field": "instruction"},
            "instruction",
            "prompt, response_a, response_b",
            id="renamed-field-absent",
        ),
        pytest.param({}, {}, "prompt", "none", id="empty-row"),
    ],
)
def test_from_mapping_missing_field_lists_present_fields(row: dict, kwargs: dict, missing: str, present: str) -> None:
    with pytest.raises(InputError) as caught:
        Pair.from_mapping(row, **kwargs)
    message = str(caught.value)
    assert f"missing field '{missing}'" in message
    assert f"(present: {present})" in message


@pytest.mark.parametrize("field", ["prompt", "response_a", "response_b"])
def test_from_mapping_null_field(field: str) -> None:
    row = {"prompt": "q", "response_a": "a", "response_b": "b", field: None}
    with pytest.raises(InputError, match=f"field '{field}' is null"):
        Pair.from_mapping(row)


def test_from_mapping_non_string_value() -> None:
    with pytest.raises(InputError, match="must be a string"):
        Pair.from_mapping({"prompt": "q", "response_a": 5, "response_b": "b"})


def test_from_mapping_non_string_reference() -> None:
    with pytest.raises(InputError, match="reference"):
        Pair.from_mapping({"prompt": "q", "response_a": "a", "response_b": "b", "reference": 7})


@pytest.mark.parametrize(
    "row",
    [
        pytest.param(["q", "a", "b"], id="list"),
        pytest.param("q", id="string"),
        pytest.param(None, id="none"),
    ],
)
def test_from_mapping_rejects_non_mappings(row: object) -> None:
    with pytest.raises(InputError, match="JSON object"):
        Pair.from_mapping(row)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- text a tokenizer cannot take


@pytest.mark.parametrize("field", ["prompt", "response_a", "response_b", "reference"])
def test_pair_rejects_a_lone_surrogate_naming_the_field(field: str) -> None:
    values = {"prompt": "q", "response_a": "a", "response_b": "b", "reference": None, field: LONE_SURROGATE}
    with pytest.raises(InputError) as caught:
        Pair(**values)
    assert caught.value.kind is Reason.BAD_TEXT
    message = str(caught.value)
    assert f"pair field '{field}'" in message and "unpaired UTF-16 surrogate (invalid Unicode: U+D800" in message
    assert "fix the source text" in message


def test_a_lone_surrogate_in_messages_names_the_message() -> None:
    history = [{"role": "user", "content": "fine"}, {"role": "assistant", "content": LONE_SURROGATE}]
    with pytest.raises(InputError, match=r"pair field 'history'\[1\] content holds an unpaired") as caught:
        Pair("q", "a", "b", history=history)  # type: ignore[arg-type]
    assert caught.value.kind is Reason.BAD_TEXT
    with pytest.raises(InputError, match=r"messages\[0\] content holds an unpaired"):
        check_messages([{"role": "user", "content": LONE_SURROGATE}], "messages")


def test_proper_unicode_and_paired_surrogates_from_json_are_fine() -> None:
    emoji = json.loads('"\\ud83d\\ude00 caf\\u00e9"')  # an escaped surrogate pair is one character
    assert Pair(emoji, "a", "b").prompt == "\U0001f600 café"


def test_errors_carry_their_kind() -> None:
    kinds = []
    for call in (lambda: Pair(1, "a", "b"), lambda: Pair.from_mapping({"prompt": "q"}),  # type: ignore[arg-type]
                 lambda: Pair.from_mapping({"prompt": "q", "response_a": None, "response_b": "b"}),
                 lambda: Pair.from_mapping([]), lambda: check_messages("x", "m"),  # type: ignore[arg-type]
                 lambda: check_messages([{"role": "robot", "content": "x"}], "m")):
        with pytest.raises(InputError) as caught:
            call()
        kinds.append(caught.value.kind)
    assert kinds == [Reason.WRONG_TYPE, Reason.MISSING_FIELD, Reason.MISSING_FIELD, Reason.NOT_AN_OBJECT,
                     Reason.BAD_MESSAGES, Reason.BAD_MESSAGES]


def test_a_conversation_ends_with_the_response_it_scores() -> None:
    history = ({"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"})
    built = conversation("q", "a", history)
    assert built == (*history, {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"})
    assert check_conversation(list(built)) == built
    with pytest.raises(InputError, match="must end with an assistant message") as caught:
        check_conversation(built[:1])
    assert caught.value.kind is Reason.BAD_MESSAGES


# --------------------------------------------------------------------------- OrderJudgment.outcome


@pytest.mark.parametrize(
    ("order", "verdict", "outcome"),
    [
        pytest.param("ab", "A", "A", id="ab-A-is-response_a"),
        pytest.param("ab", "B", "B", id="ab-B-is-response_b"),
        pytest.param("ba", "A", "B", id="ba-A-is-response_b"),
        pytest.param("ba", "B", "A", id="ba-B-is-response_a"),
        pytest.param("ab", "C", "tie", id="ab-C-is-tie"),
        pytest.param("ba", "C", "tie", id="ba-C-is-tie"),
    ],
)
def test_order_judgment_outcome(order: str, verdict: str, outcome: str) -> None:
    judged = OrderJudgment(order=order, verdict=verdict, p_a=0.5, p_b=0.5)  # type: ignore[arg-type]
    assert judged.outcome == outcome


# --------------------------------------------------------------------------- Preference.to_dict


def test_to_dict_drops_none_values_in_orders() -> None:
    ab = OrderJudgment(order="ab", verdict="A", p_a=0.9, p_b=0.1, format_mass=0.6)
    ba = OrderJudgment(order="ba", verdict="B", p_a=1.0, p_b=0.0, text="because [[B]]", forced=True)
    preference = Preference(label="A", p_a=0.95, consistent=True, orders=(ab, ba))
    data = preference.to_dict()
    assert data["label"] == "A"
    assert data["p_a"] == 0.95
    assert data["consistent"] is True
    assert data["orders"] == [
        {"order": "ab", "verdict": "A", "p_a": 0.9, "p_b": 0.1, "p_tie": 0.0, "format_mass": 0.6, "forced": False},
        {"order": "ba", "verdict": "B", "p_a": 1.0, "p_b": 0.0, "p_tie": 0.0, "text": "because [[B]]", "forced": True},
    ]
    assert json.loads(json.dumps(data)) == data


def test_to_dict_keeps_false_and_zero_and_top_level_none() -> None:
    only = OrderJudgment(order="ab", verdict="C", p_a=0.0, p_b=0.0, p_tie=1.0)
    data = Preference(label="tie", p_a=0.0, consistent=None, orders=(only,)).to_dict()
    assert data["consistent"] is None
    assert data["p_a"] == 0.0
    (order,) = data["orders"]
    assert order["forced"] is False
    assert order["p_a"] == 0.0
    assert "text" not in order
    assert "format_mass" not in order
