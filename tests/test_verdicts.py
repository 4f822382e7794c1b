"""Reading verdict tokens out of judge text: critic.parse_verdict and critic.find_verdicts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import critic
from critic import VerdictError, parse_verdict
from critic.verdicts import find_verdicts
from critic.errors import shorten

# --------------------------------------------------------------------------- accepted forms


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("[[A]]", "A", id="bare-A"),
        pytest.param("[[B]]", "B", id="bare-B"),
        pytest.param("[[a]]", "A", id="lowercase-a"),
        pytest.param("[[b]]", "B", id="lowercase-b"),
        pytest.param("[[ b ]]", "B", id="spaces-inside"),
        pytest.param("[[   A  ]]", "A", id="several-spaces-inside"),
        pytest.param("[[\tA\t]]", "A", id="tabs-inside"),
        pytest.param("[[ \tB\t ]]", "B", id="mixed-space-tab-inside"),
        pytest.param("My final verdict is [[B]].", "B", id="inside-sentence"),
        pytest.param("Assistant A is wrong.\n\nFinal verdict: [[B]]\n", "B", id="after-explanation"),
        pytest.param("[[A]] because it is right", "A", id="verdict-first"),
        pytest.param("x[[A]]y", "A", id="glued-to-words"),
        pytest.param("([[A]])", "A", id="in-parentheses"),
    ],
)
def test_accepted_forms(text: str, expected: str) -> None:
    assert parse_verdict(text) == expected
    assert parse_verdict(text, strict=True) == expected


# --------------------------------------------------------------------------- not verdicts


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("[A]", id="single-brackets"),
        pytest.param("[[AB]]", id="two-letters"),
        pytest.param("[[A]", id="unclosed"),
        pytest.param("[A]]", id="half-opened"),
        pytest.param("A", id="bare-letter"),
        pytest.param("The answer is B.", id="letter-in-prose"),
        pytest.param("[[D]]", id="other-letter"),
        pytest.param("[[1]]", id="digit"),
        pytest.param("[[[A]]]", id="triple-brackets"),
        pytest.param("[[[A]]", id="extra-opening-bracket"),
        pytest.param("[[A]]]", id="extra-closing-bracket"),
        pytest.param("[[\nA\n]]", id="newlines-inside"),
        pytest.param("[[]]", id="empty-brackets"),
        pytest.param("[ [A] ]", id="spaced-brackets"),
        pytest.param("", id="empty-text"),
    ],
)
def test_not_a_verdict(text: str) -> None:
    assert find_verdicts(text) == []
    for strict in (False, True):
        with pytest.raises(VerdictError) as caught:
            parse_verdict(text, allow_tie=True, strict=strict)
        assert caught.value.reason == "no verdict"
        assert caught.value.text == text


# --------------------------------------------------------------------------- several tokens


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            'Output "[[A]]" if A is better or "[[B]]" if B is better. Here: [[B]]',
            "B",
            id="quotes-format-then-B",
        ),
        pytest.param(
            'The format is "[[B]]" for B. Having compared both, [[A]]',
            "A",
            id="quotes-format-then-A",
        ),
        pytest.param("[[A]] no wait, [[B]]", "B", id="changed-mind"),
        pytest.param("[[A]][[B]]", "B", id="adjacent-tokens"),
        pytest.param("[[b]] ... [[ a ]]", "A", id="mixed-case-and-spacing"),
    ],
)
def test_lenient_last_token_wins(text: str, expected: str) -> None:
    assert parse_verdict(text) == expected


@pytest.mark.parametrize(
    ("text", "named"),
    [
        pytest.param("[[A]] no wait, [[B]]", ("[[A]]", "[[B]]"), id="A-then-B"),
        pytest.param("[[A]][[B]]", ("[[A]]", "[[B]]"), id="adjacent"),
        pytest.param("[[b]] then [[a]]", ("[[A]]", "[[B]]"), id="lowercase"),
        pytest.param("[[A]] or [[C]]", ("[[A]]", "[[C]]"), id="with-tie"),
    ],
)
def test_strict_conflicting_tokens_are_ambiguous(text: str, named: tuple[str, ...]) -> None:
    with pytest.raises(VerdictError) as caught:
        parse_verdict(text, allow_tie=True, strict=True)
    assert caught.value.reason == "ambiguous"
    message = str(caught.value)
    assert message.startswith("ambiguous")
    for token in named:
        assert token in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("[[A]] [[A]]", "A", id="same-twice"),
        pytest.param("[[b]] and again [[ B ]]", "B", id="same-different-spelling"),
        pytest.param("[[C]][[c]]", "C", id="tie-twice"),
    ],
)
def test_strict_agreeing_repeats_are_fine(text: str, expected: str) -> None:
    assert parse_verdict(text, allow_tie=True, strict=True) == expected


# --------------------------------------------------------------------------- ties


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("[[C]]", id="bare"),
        pytest.param("[[ c ]]", id="lowercase-spaced"),
        pytest.param("Both are equally good: [[C]]", id="in-text"),
        pytest.param("[[A]] hmm, actually [[C]]", id="last-token-is-tie"),
    ],
)
def test_tie_not_allowed_by_default(text: str) -> None:
    with pytest.raises(VerdictError) as caught:
        parse_verdict(text)
    assert caught.value.reason == "tie not allowed"
    assert "tie not allowed" in str(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("[[C]]", id="bare"),
        pytest.param("[[ c ]]", id="lowercase-spaced"),
        pytest.param("Both are equally good: [[C]]", id="in-text"),
    ],
)
def test_tie_allowed(text: str) -> None:
    assert parse_verdict(text, allow_tie=True) == "C"
    assert parse_verdict(text, allow_tie=True, strict=True) == "C"


def test_earlier_tie_does_not_matter_in_lenient_mode() -> None:
    assert parse_verdict("the format allows [[C]] but I pick [[A]]") == "A"


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "kwargs", "reason"),
    [
        pytest.param("I cannot decide.", {}, "no verdict", id="no-verdict"),
        pytest.param("[[A]] vs [[B]]", {"strict": True}, "ambiguous", id="ambiguous"),
        pytest.param("it is a draw [[C]]", {}, "tie not allowed", id="tie-not-allowed"),
    ],
)
def test_error_carries_reason_and_offending_text(text: str, kwargs: dict, reason: str) -> None:
    with pytest.raises(VerdictError) as caught:
        parse_verdict(text, **kwargs)
    error = caught.value
    assert isinstance(error, critic.CriticError)
    assert error.reason == reason
    assert error.text == text
    assert repr(text) in str(error)


def test_error_message_shortens_long_text() -> None:
    start = "START-" + "x" * 300
    end = "y" * 300 + "-END"
    text = start + "MIDDLE-MARKER" + end
    with pytest.raises(VerdictError) as caught:
        parse_verdict(text)
    message = str(caught.value)
    assert caught.value.text == text  # the full text is kept on the exception
    assert "MIDDLE-MARKER" not in message
    assert "START-" in message
    assert "-END" in message
    assert repr(shorten(text)) in message
    assert len(message) < 400


@pytest.mark.parametrize(
    ("length", "limit"),
    [
        pytest.param(201, 200, id="just-over-default"),
        pytest.param(10_000, 200, id="very-long"),
        pytest.param(100, 50, id="custom-limit"),
        pytest.param(8, 7, id="smallest-useful-limit"),
    ],
)
def test_shorten_keeps_start_and_end(length: int, limit: int) -> None:
    text = "".join(chr(ord("a") + i % 26) for i in range(length))
    short = shorten(text, limit)
    assert len(short) <= limit
    assert " ... " in short
    head, tail = short.split(" ... ")
    assert head and tail
    assert text.startswith(head)
    assert text.endswith(tail)


@pytest.mark.parametrize("length", [0, 1, 199, 200])
def test_shorten_leaves_short_text_alone(length: int) -> None:
    text = "z" * length
    assert shorten(text) == text


def test_shorten_never_lengthens_with_tiny_limit() -> None:
    text = "q" * 1000
    assert len(shorten(text, limit=6)) <= len(text)


@given(
    text=st.text(max_size=300),
    limit=st.integers(min_value=7, max_value=400),
)
def test_shorten_property(text: str, limit: int) -> None:
    short = shorten(text, limit)
    if len(text) <= limit:
        assert short == text
    else:
        assert len(short) <= limit
        half = (limit - 5) // 2
        assert short.startswith(text[:half])
        assert short.endswith(text[-half:])


# --------------------------------------------------------------------------- properties

no_brackets = st.text(alphabet=st.characters(blacklist_characters="[]"), max_size=200)


@given(
    text=no_brackets,
    position=st.integers(min_value=0, max_value=200),
    letter=st.sampled_from(["A", "B", "a", "b"]),
    inner_left=st.sampled_from(["", " ", "\t", "  "]),
    inner_right=st.sampled_from(["", " ", "\t", "  "]),
)
def test_one_inserted_token_is_found_anywhere(
    text: str, position: int, letter: str, inner_left: str, inner_right: str
) -> None:
    cut = min(position, len(text))
    token = f"[[{inner_left}{letter}{inner_right}]]"
    full = text[:cut] + token + text[cut:]
    assert find_verdicts(full) == [letter.upper()]
    assert parse_verdict(full) == letter.upper()
    assert parse_verdict(full, strict=True) == letter.upper()


@given(text=no_brackets, position=st.integers(min_value=0, max_value=200))
def test_one_inserted_tie_token_is_found_with_allow_tie(text: str, position: int) -> None:
    cut = min(position, len(text))
    full = text[:cut] + "[[C]]" + text[cut:]
    assert parse_verdict(full, allow_tie=True) == "C"
    assert parse_verdict(full, allow_tie=True, strict=True) == "C"
    with pytest.raises(VerdictError) as caught:
        parse_verdict(full)
    assert caught.value.reason == "tie not allowed"


@given(text=st.text(alphabet=st.characters(blacklist_characters="["), max_size=300))
def test_text_without_opening_bracket_never_parses(text: str) -> None:
    for strict in (False, True):
        with pytest.raises(VerdictError) as caught:
            parse_verdict(text, allow_tie=True, strict=strict)
        assert caught.value.reason == "no verdict"


# Text built from the characters that matter to the parser, plus anything at all.
PIECES = ["[[", "]]", "[", "]", "A", "b", "C", " ", "\t", "x", "[[A]]", "[[ b ]]"]
tricky_text = st.one_of(
    st.text(alphabet="[]ABCDabcd \t\n", max_size=60),
    st.lists(st.sampled_from(PIECES), max_size=20).map("".join),
    st.text(max_size=200),
)


@given(text=tricky_text, allow_tie=st.booleans(), strict=st.booleans())
def test_only_verdict_errors_escape(text: str, allow_tie: bool, strict: bool) -> None:
    try:
        result = parse_verdict(text, allow_tie=allow_tie, strict=strict)
    except VerdictError as error:
        assert error.reason in {"no verdict", "ambiguous", "tie not allowed"}
    else:
        assert result in ({"A", "B", "C"} if allow_tie else {"A", "B"})


@given(text=tricky_text)
def test_lenient_result_is_last_found_token(text: str) -> None:
    found = find_verdicts(text)
    if found:
        assert parse_verdict(text, allow_tie=True) == found[-1]
        if len(set(found)) == 1:
            assert parse_verdict(text, allow_tie=True, strict=True) == found[-1]
    else:
        with pytest.raises(VerdictError):
            parse_verdict(text, allow_tie=True)
