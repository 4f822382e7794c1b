"""The Judge over critic.testing.FakeBackend: swapping, merging, parsing, errors. No model."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

import critic
from critic import (
    CriticError,
    InputError,
    Judge,
    ModelError,
    Pair,
    Preference,
    VerdictError,
)
from critic.backends.base import Backend, BackendOutput, VerdictRequest
from critic.errors import Reason
from critic.judges import JudgeDescription, PairwiseJudge
from critic.testing import FakeBackend, letter_output

LONE_SURROGATE = json.loads('"broken \\ud800 text"')  # valid JSON, invalid Unicode

PAIRS = [
    Pair("What is 2+2?", "4", "5"),
    Pair("Capital of France?", "Lyon", "Paris"),
    Pair("Largest planet?", "Jupiter", "Mars"),
]


class CountingBackend:
    """Wraps a backend and records how the judge batches its requests."""

    def __init__(self, inner: FakeBackend) -> None:
        self.inner = inner
        self.batches: list[int] = []

    def run(self, requests: Sequence[VerdictRequest]) -> list[BackendOutput]:
        self.batches.append(len(requests))
        return self.inner.run(requests)


class FixedBackend:
    """Returns exactly the outputs it is given, whatever it is asked."""

    def __init__(self, outputs: list[BackendOutput]) -> None:
        self.outputs = outputs

    def run(self, requests: Sequence[VerdictRequest]) -> list[BackendOutput]:
        return list(self.outputs)


# --------------------------------------------------------------------------- construction


def test_fake_backend_satisfies_the_protocol() -> None:
    assert isinstance(FakeBackend.first_position(), Backend)


def test_unknown_mode() -> None:
    with pytest.raises(InputError) as caught:
        Judge(FakeBackend.first_position(), mode="vibes")  # type: ignore[arg-type]
    message = str(caught.value)
    assert "vibes" in message
    for mode in ("score", "constrained", "generate"):
        assert mode in message


def test_max_new_tokens_must_be_positive() -> None:
    with pytest.raises(InputError, match="max_new_tokens"):
        Judge(FakeBackend.first_position(), max_new_tokens=0)


def test_unknown_template_name() -> None:
    with pytest.raises(critic.TemplateError):
        Judge(FakeBackend.first_position(), template="no-such-template")


# --------------------------------------------------------------------------- compare, compare_batch, compare_each


def test_compare_scripted_score() -> None:
    # ab: shown-first (response_a) wins 0.9; ba: shown-first (response_b) wins 0.2, so response_a 0.8.
    judge = Judge(FakeBackend.scripted([0.9, 0.2]))
    preference = judge.compare("q", "good", "bad")
    assert isinstance(preference, Preference)
    assert preference.label == "A"
    assert preference.consistent is True
    assert preference.p_a == pytest.approx(0.85)
    ab, ba = preference.orders
    assert (ab.order, ab.verdict, ab.p_a) == ("ab", "A", pytest.approx(0.9))
    assert (ba.order, ba.verdict, ba.p_a) == ("ba", "B", pytest.approx(0.8))
    assert ab.format_mass == pytest.approx(1.0)


def test_compare_scripted_prefers_b() -> None:
    preference = Judge(FakeBackend.scripted([0.3, 0.6])).compare("q", "bad", "good")
    assert preference.label == "B"
    assert preference.consistent is True
    assert preference.p_a == pytest.approx(0.35)


def test_score_mode_format_mass_and_normalisation() -> None:
    judge = Judge(FakeBackend.scripted([letter_output(0.75, format_mass=0.4), letter_output(0.25, format_mass=0.2)]))
    preference = judge.compare("q", "a", "b")
    ab, ba = preference.orders
    assert ab.format_mass == pytest.approx(0.4)
    assert ba.format_mass == pytest.approx(0.2)
    assert ab.p_a == pytest.approx(0.75)
    assert ba.p_a == pytest.approx(0.75)
    assert preference.p_a == pytest.approx(0.75)
    assert preference.label == "A"


def test_compare_passes_reference_to_the_template() -> None:
    backend = FakeBackend.first_position(0.7)
    Judge(backend, template="mt-bench-math", mode="constrained").compare("q", "a", "b", reference="REF-42")
    assert all(request.pair.reference == "REF-42" for request in backend.calls)
    assert all("REF-42" in request.messages[-1]["content"] for request in backend.calls)


def test_compare_batch_keeps_input_order_and_batches_once() -> None:
    backend = CountingBackend(FakeBackend.prefer(lambda text: text in {"4", "Paris", "Jupiter"}))
    results = Judge(backend).compare_batch(PAIRS)
    assert [result.label for result in results] == ["A", "B", "A"]
    assert all(result.consistent is True for result in results)
    assert backend.batches == [6]


def test_compare_batch_accepts_dicts_and_pairs() -> None:
    rows = [
        {"prompt": "What is 2+2?", "response_a": "5", "response_b": "4"},
        Pair("Capital of France?", "Paris", "Lyon"),
    ]
    results = Judge(FakeBackend.prefer(lambda text: text in {"4", "Paris"})).compare_batch(rows)
    assert [result.label for result in results] == ["B", "A"]


def test_compare_batch_accepts_a_generator() -> None:
    results = Judge(FakeBackend.first_position(0.6)).compare_batch(pair for pair in PAIRS[:2])
    assert len(results) == 2


def test_compare_batch_empty() -> None:
    backend = FakeBackend.first_position()
    assert Judge(backend).compare_batch([]) == []
    assert backend.calls == []


def test_compare_each_all_good() -> None:
    results = Judge(FakeBackend.prefer(lambda text: text == "4")).compare_each(PAIRS[:1])
    assert len(results) == 1
    assert isinstance(results[0], Preference)
    assert results[0].label == "A"


@pytest.mark.parametrize(
    ("rows", "index"),
    [
        pytest.param([{"prompt": "q", "response_a": "a"}], 0, id="first-pair"),
        pytest.param(
            [{"prompt": "q", "response_a": "a", "response_b": "b"}, {"prompt": "q", "response_b": "b"}],
            1,
            id="second-pair",
        ),
        pytest.param(
            [Pair("q", "a", "b"), Pair("q", "a", "b"), {"prompt": "q", "response_a": None, "response_b": "b"}],
            2,
            id="null-field",
        ),
    ],
)
def test_dict_pair_with_missing_field(rows: list, index: int) -> None:
    backend = FakeBackend.first_position()
    judge = Judge(backend)
    with pytest.raises(InputError) as caught:
        judge.compare_batch(rows)
    assert str(caught.value).startswith(f"pair {index}:")
    assert caught.value.kind is Reason.MISSING_FIELD and caught.value.pair_index == index
    assert backend.calls == []  # compare_batch checks every pair before anything reaches the model
    results = judge.compare_each(rows)  # compare_each: the malformed pair fails alone, in place
    assert isinstance(results[index], InputError) and str(results[index]).startswith(f"pair {index}:")
    assert results[index].pair_index == index
    assert all(isinstance(result, Preference) for position, result in enumerate(results) if position != index)
    assert len(backend.calls) == 2 * (len(rows) - 1)


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param({"prompt": LONE_SURROGATE}, id="prompt"),
        pytest.param({"response_a": LONE_SURROGATE}, id="response_a"),
        pytest.param({"response_b": LONE_SURROGATE}, id="response_b"),
        pytest.param({"reference": LONE_SURROGATE}, id="reference"),
        pytest.param({"history": [{"role": "user", "content": LONE_SURROGATE}, {"role": "assistant", "content": "x"}]},
                     id="history"),
    ],
)
def test_a_lone_surrogate_fails_its_pair_and_the_neighbours_are_judged(broken: dict) -> None:
    field = next(iter(broken))
    rows = [{"prompt": "q", "response_a": "4", "response_b": "5"}] * 3
    rows = [rows[0], {**rows[1], **broken}, rows[2]]
    backend = FakeBackend.prefer(lambda text: text == "4")
    results = Judge(backend).compare_each(rows)
    assert [result.label for result in (results[0], results[2])] == ["A", "A"]  # type: ignore[union-attr]
    error = results[1]
    assert isinstance(error, InputError) and error.kind is Reason.BAD_TEXT and error.pair_index == 1
    assert f"'{field}'" in str(error) and "unpaired UTF-16 surrogate" in str(error)
    assert len(backend.calls) == 4  # the two good pairs in both orders: the broken one never reaches the model
    with pytest.raises(InputError, match="surrogate"):
        Judge(backend).compare_batch(rows)


# --------------------------------------------------------------------------- swapping


def test_swap_sends_ab_then_ba_per_pair() -> None:
    backend = FakeBackend.first_position(0.7)
    Judge(backend).compare_batch(PAIRS[:2])
    assert len(backend.calls) == 4
    expected = [PAIRS[0], PAIRS[0].swapped(), PAIRS[1], PAIRS[1].swapped()]
    assert [request.pair for request in backend.calls] == expected
    for request in backend.calls:
        assert request.mode == "score"
        assert request.verdicts == ("A", "B")
        assert request.prefill == ""
        assert request.messages == tuple(critic.load_template("skywork-critic").render(request.pair))


def test_swapped_request_shows_response_b_first() -> None:
    backend = FakeBackend.first_position()
    Judge(backend).compare("QUESTION", "ALPHA", "OMEGA")
    first, second = (request.messages[0]["content"] for request in backend.calls)
    assert first.index("ALPHA") < first.index("OMEGA")
    assert second.index("OMEGA") < second.index("ALPHA")


def test_no_swap_sends_one_request() -> None:
    backend = FakeBackend.first_position(0.7)
    preference = Judge(backend, swap=False).compare("q", "a", "b")
    assert len(backend.calls) == 1
    assert backend.calls[0].pair == Pair("q", "a", "b")
    assert preference.consistent is None
    assert preference.label == "A"
    assert preference.p_a == pytest.approx(0.7)
    assert [order.order for order in preference.orders] == ["ab"]


def test_no_swap_batch() -> None:
    backend = FakeBackend.scripted([0.2, 0.9])
    results = Judge(backend, swap=False).compare_batch(PAIRS[:2])
    assert [result.label for result in results] == ["B", "A"]
    assert [request.pair for request in backend.calls] == PAIRS[:2]


@pytest.mark.parametrize("mode", ["score", "constrained", "generate"])
def test_position_bias_is_neutralised(mode: str) -> None:
    preference = Judge(FakeBackend.first_position(0.8), mode=mode).compare("q", "a", "b")  # type: ignore[arg-type]
    assert preference.label == "tie"
    assert preference.consistent is False
    assert preference.p_a == pytest.approx(0.5)


@pytest.mark.parametrize("mode", ["score", "constrained", "generate"])
@pytest.mark.parametrize(
    ("response_a", "response_b", "label"),
    [
        pytest.param("the correct answer", "a wrong answer", "A", id="correct-first"),
        pytest.param("a wrong answer", "the correct answer", "B", id="correct-second"),
    ],
)
def test_content_preference_survives_swapping(mode: str, response_a: str, response_b: str, label: str) -> None:
    judge = Judge(FakeBackend.prefer(lambda text: "correct" in text), mode=mode)  # type: ignore[arg-type]
    preference = judge.compare("q", response_a, response_b)
    assert preference.label == label
    assert preference.consistent is True
    assert all(order.outcome == label for order in preference.orders)
    if mode == "score":
        assert preference.p_a == pytest.approx(0.9 if label == "A" else 0.1)


# --------------------------------------------------------------------------- generate mode


@pytest.mark.parametrize(
    ("outputs", "label", "consistent"),
    [
        pytest.param(["I think [[B]]", "Clearly [[A]] is better"], "B", True, id="B-in-both-orders"),
        pytest.param(['Format "[[B]]"... so [[A]]', "[[ b ]]"], "A", True, id="last-token-wins"),
        pytest.param(["[[A]]", "[[A]]"], "tie", False, id="position-bias"),
    ],
)
def test_generate_mode_parses_text(outputs: list[str], label: str, consistent: bool) -> None:
    backend = FakeBackend.scripted(outputs)
    preference = Judge(backend, mode="generate").compare("q", "a", "b")
    assert preference.label == label
    assert preference.consistent is consistent
    assert [order.text for order in preference.orders] == outputs
    assert all(order.forced is False for order in preference.orders)
    assert all(request.mode == "generate" for request in backend.calls)


def test_generate_mode_passes_max_new_tokens() -> None:
    backend = FakeBackend.scripted(["[[A]]", "[[B]]"])
    Judge(backend, mode="generate", max_new_tokens=17).compare("q", "a", "b")
    assert [request.max_new_tokens for request in backend.calls] == [17, 17]


def test_generate_mode_tie_with_mt_bench() -> None:
    preference = Judge(FakeBackend.scripted(["... [[C]]", "[[B]]"]), template="mt-bench", mode="generate").compare(
        "q", "a", "b"
    )
    assert preference.label == "tie"
    assert preference.orders[0].verdict == "C"
    assert preference.orders[0].p_tie == 1.0


def test_generate_mode_tie_not_allowed_with_skywork() -> None:
    judge = Judge(FakeBackend.scripted(["[[A]]", "[[C]]"]), mode="generate")
    (result,) = judge.compare_each([Pair("q", "a", "b")])
    assert isinstance(result, VerdictError)
    assert result.reason == "tie not allowed"


def _unreadable_judge() -> tuple[FakeBackend, Judge]:
    outputs = ["[[A]]", "[[B]]", "I refuse to answer.", "[[A]]", "[[B]]", "[[A]]"]
    backend = FakeBackend.scripted(outputs)
    return backend, Judge(backend, mode="generate")


def test_generate_unreadable_output_compare_batch_raises() -> None:
    backend, judge = _unreadable_judge()
    with pytest.raises(VerdictError) as caught:
        judge.compare_batch(PAIRS)
    error = caught.value
    assert error.reason == "no verdict"
    assert error.text == "I refuse to answer."
    assert error.pair_index == 1  # type: ignore[attr-defined]
    assert "while judging pair 1" in getattr(error, "__notes__", [])
    # skywork-critic is verdict-first: nothing is forced, one request per order.
    assert len(backend.calls) == 6


def test_generate_unreadable_output_compare_each_in_place() -> None:
    _, judge = _unreadable_judge()
    results = judge.compare_each(PAIRS)
    assert len(results) == 3
    assert isinstance(results[0], Preference)
    assert results[0].label == "A"
    assert isinstance(results[1], VerdictError)
    assert results[1].reason == "no verdict"
    assert results[1].pair_index == 1  # type: ignore[attr-defined]
    assert isinstance(results[2], Preference)
    assert results[2].label == "B"


# --------------------------------------------------------------------------- forced verdict after an explanation


def test_explanation_without_verdict_is_forced() -> None:
    explanation = "Assistant A is right because 2+2 is 4. Assistant B is wrong."
    backend = FakeBackend.scripted([explanation, "Both tried; B wins. [[B]]", "[[A]]"])
    judge = Judge(backend, template="mt-bench", mode="generate", max_new_tokens=64)
    preference = judge.compare("What is 2+2?", "4", "5")

    assert len(backend.calls) == 3
    first, second, forced = backend.calls
    assert (first.mode, second.mode) == ("generate", "generate")
    assert forced.mode == "constrained"
    assert forced.prefill == explanation
    assert forced.pair == first.pair == Pair("What is 2+2?", "4", "5")
    assert forced.messages == first.messages
    assert forced.verdicts == ("A", "B", "C")

    ab, ba = preference.orders
    assert ab.forced is True
    assert ab.verdict == "A"
    assert ab.text == explanation + "[[A]]"
    assert ba.forced is False
    assert ba.text == "Both tried; B wins. [[B]]"
    assert preference.label == "A"
    assert preference.consistent is True


def test_forced_verdict_in_the_ba_order_uses_the_swapped_pair() -> None:
    backend = FakeBackend.scripted(["[[A]]", "no verdict here", "[[B]]"])
    preference = Judge(backend, template="mt-bench", mode="generate").compare("q", "a", "b")
    forced = backend.calls[2]
    assert forced.mode == "constrained"
    assert forced.pair == Pair("q", "b", "a")
    assert forced.prefill == "no verdict here"
    assert preference.orders[1].forced is True
    assert preference.orders[1].outcome == "A"
    assert preference.label == "A"


def test_forced_step_batches_all_missing_verdicts() -> None:
    backend = CountingBackend(FakeBackend.scripted(["e1", "[[B]]", "[[A]]", "e2", "[[A]]", "[[C]]"]))
    results = Judge(backend, template="mt-bench", mode="generate").compare_batch(PAIRS[:2])
    assert backend.batches == [4, 2]
    assert [request.prefill for request in backend.inner.calls[4:]] == ["e1", "e2"]
    assert [result.label for result in results] == ["A", "tie"]
    assert results[1].orders[1].forced is True
    assert results[1].orders[1].text == "e2[[C]]"


def test_forced_step_failure_is_reported_in_place() -> None:
    backend = FakeBackend.scripted(["explanation only", "[[A]]", "still nothing"])
    (result,) = Judge(backend, template="mt-bench", mode="generate").compare_each([Pair("q", "a", "b")])
    assert isinstance(result, VerdictError)
    assert result.text == "still nothing"


def test_verdict_first_template_is_not_forced() -> None:
    backend = FakeBackend.scripted(["explanation only", "[[A]]"])
    (result,) = Judge(backend, template="skywork-critic", mode="generate").compare_each([Pair("q", "a", "b")])
    assert isinstance(result, VerdictError)
    assert len(backend.calls) == 2


def test_constrained_mode_is_not_forced_again() -> None:
    backend = FakeBackend.scripted(["nothing", "[[A]]"])
    (result,) = Judge(backend, template="mt-bench", mode="constrained").compare_each([Pair("q", "a", "b")])
    assert isinstance(result, VerdictError)
    assert len(backend.calls) == 2


# --------------------------------------------------------------------------- constrained mode


def test_constrained_mode_reads_verdict_tokens() -> None:
    backend = FakeBackend.scripted(["[[B]]", "[[A]]"])
    preference = Judge(backend, mode="constrained").compare("q", "a", "b")
    assert preference.label == "B"
    assert preference.consistent is True
    assert preference.p_a == 0.0
    assert all(request.mode == "constrained" for request in backend.calls)
    assert all(order.text is None for order in preference.orders)


def test_constrained_agreeing_repeats_are_fine() -> None:
    preference = Judge(FakeBackend.scripted(["[[A]][[A]]", "[[B]]"]), mode="constrained").compare("q", "a", "b")
    assert preference.label == "A"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("A", "no verdict", id="bare-letter"),
        pytest.param("[[AB]]", "no verdict", id="two-letters"),
        pytest.param("[[A]][[B]]", "ambiguous", id="two-conflicting-verdicts"),
        pytest.param("[[B]] ... [[A]]", "ambiguous", id="conflicting-with-text"),
    ],
)
def test_constrained_mode_is_strict(text: str, reason: str) -> None:
    judge = Judge(FakeBackend.scripted([text, "[[A]]"]), mode="constrained")
    with pytest.raises(VerdictError) as caught:
        judge.compare("q", "a", "b")
    assert caught.value.reason == reason
    assert caught.value.text == text


def test_constrained_tie_without_tie_template() -> None:
    with pytest.raises(VerdictError) as caught:
        Judge(FakeBackend.scripted(["[[C]]", "[[A]]"]), mode="constrained").compare("q", "a", "b")
    assert caught.value.reason == "tie not allowed"


# --------------------------------------------------------------------------- broken backends


@pytest.mark.parametrize(
    "outputs",
    [
        pytest.param([], id="none"),
        pytest.param([letter_output(0.5)], id="too-few"),
        pytest.param([letter_output(0.5)] * 3, id="too-many"),
    ],
)
def test_wrong_number_of_outputs(outputs: list[BackendOutput]) -> None:
    judge = Judge(FixedBackend(outputs))
    for method in (judge.compare_batch, judge.compare_each):
        with pytest.raises(ModelError) as caught:
            method([Pair("q", "a", "b")])
        assert str(len(outputs)) in str(caught.value)


def test_score_mode_without_letter_probs() -> None:
    judge = Judge(FakeBackend.scripted([BackendOutput(text="[[A]]"), 0.5]))
    with pytest.raises(ModelError, match="letter probabilities"):
        judge.compare("q", "a", "b")


@pytest.mark.parametrize("mode", ["constrained", "generate"])
def test_text_mode_without_text(mode: str) -> None:
    judge = Judge(FakeBackend.scripted([letter_output(0.5), letter_output(0.5)]), mode=mode)  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="no text"):
        judge.compare("q", "a", "b")


def test_scripted_backend_running_out_is_an_error() -> None:
    with pytest.raises(CriticError, match="ran out"):
        Judge(FakeBackend.scripted([0.9])).compare("q", "a", "b")


def test_fake_backend_fits_templates_that_allow_ties() -> None:
    preference = Judge(FakeBackend.first_position(0.8), template="mt-bench").compare("q", "a", "b")
    assert preference.label == "tie" and preference.consistent is False
    assert all(order.p_tie == 0.0 for order in preference.orders)


def test_score_output_missing_a_template_letter_is_a_model_error() -> None:
    outputs = [BackendOutput(letter_probs={"A": 0.5, "B": 0.5})] * 2
    with pytest.raises(ModelError, match="verdict letter.*C"):
        Judge(FakeBackend.scripted(outputs), template="mt-bench").compare("q", "a", "b")


def test_score_output_with_no_mass_on_letters_is_a_verdict_error_for_that_pair_only() -> None:
    no_mass = BackendOutput(letter_probs={"A": 0.0, "B": 0.0})
    outputs = [letter_output(0.9), letter_output(0.1), no_mass, letter_output(0.5)]
    results = Judge(FakeBackend.scripted(outputs)).compare_each([
        {"prompt": "q", "response_a": "a", "response_b": "b"},
        {"prompt": "q", "response_a": "c", "response_b": "d"},
    ])
    assert results[0].label == "A"
    assert isinstance(results[1], VerdictError) and results[1].reason == "no verdict"

def test_backend_error_for_one_request_costs_only_that_pair() -> None:
    too_long = InputError("prompt is 9000 tokens; the model reads at most 8192")
    outputs = [letter_output(0.9), letter_output(0.1), BackendOutput(error=too_long), letter_output(0.5)]
    results = Judge(FakeBackend.scripted(outputs)).compare_each(
        [Pair("q", "a", "b"), Pair("q", "c", "d")]
    )
    assert results[0].label == "A"
    assert results[1] is too_long and too_long.pair_index == 1


def test_judge_describes_itself_and_fits_the_job_protocol() -> None:
    judge = Judge(FakeBackend.first_position(), template="mt-bench", mode="generate", model_name="m")
    assert isinstance(judge, PairwiseJudge) and critic.PairwiseJudge is PairwiseJudge
    description = judge.describe()
    assert description == JudgeDescription(
        kind="generative", model="m", backend="fake", template="mt-bench", mode="generate", swap=True
    )
    assert description.to_dict() == {"kind": "generative", "model": "m", "backend": "fake", "template": "mt-bench",
                                      "mode": "generate", "swap": True}


def test_a_backend_that_does_not_name_itself_is_custom() -> None:
    assert Judge(FixedBackend([])).describe().backend == "custom"


def test_settings_are_checked_before_any_model_loads() -> None:
    # Neither the (absent) default model nor the hub is touched: the settings fail first.
    with pytest.raises(InputError, match="vibes"):
        Judge.from_pretrained("/no/such/model", mode="vibes")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="max_new_tokens"):
        Judge.from_pretrained("/no/such/model", max_new_tokens=0)
    with pytest.raises(critic.TemplateError):
        Judge.from_pretrained("/no/such/model", template="no-such-template")


# --- two conversations in a pair (MT-Bench's second turn) -------------------------------------

TURN_ONE = ({"role": "user", "content": "Plan a trip."},)


def two_conversation_pair() -> Pair:
    return Pair("Now in a haiku.", "Haiku A", "Haiku B",
                history_a=(*TURN_ONE, {"role": "assistant", "content": "Trip plan A"}),
                history_b=(*TURN_ONE, {"role": "assistant", "content": "Trip plan B"}))


def test_mt_bench_judges_a_two_conversation_pair_with_its_multi_turn_prompt() -> None:
    backend = FakeBackend.first_position(0.7)
    judge = Judge(backend, template="mt-bench", mode="constrained")
    single = Pair("Plan a trip.", "Trip plan A", "Trip plan B")
    results = judge.compare_each([single, two_conversation_pair()])
    assert all(isinstance(result, Preference) for result in results)
    names = [request.template.name for request in backend.calls]
    assert names == ["mt-bench", "mt-bench", "mt-bench-multi-turn", "mt-bench-multi-turn"]
    # the second order shows each answer with its own first turn, swapped together
    shown = backend.calls[3].pair
    assert (shown.response_a, shown.history_a[-1]["content"]) == ("Haiku B", "Trip plan B")
    assert judge.describe().template == "mt-bench"


def test_a_template_that_cannot_show_two_conversations_fails_that_pair_only(tiny_backend, tmp_path) -> None:
    one = tmp_path / "one-conversation.jinja"  # a user's template: it reads one shared history at most
    one.write_text("{%- set verdicts = ['A', 'B'] -%}{%- block user -%}{{ prompt }} A: {{ response_a }} "
                   "B: {{ response_b }}{% endblock %}", encoding="utf-8")
    judge = Judge(tiny_backend, template=str(one))  # the backend renders the prompt
    good, bad = judge.compare_each([Pair("q", "a", "b"), two_conversation_pair()])
    assert isinstance(good, Preference)
    assert isinstance(bad, InputError) and "two conversations" in str(bad) and "mt-bench-multi-turn" in str(bad)



def test_the_default_template_judges_a_two_conversation_pair_with_the_multi_turn_prompt(caplog) -> None:
    """Issue 17: MT-Bench turn-2 rows failed under the default template in judge and filter."""
    backend = FakeBackend.first_position(0.7)
    judge = Judge(backend)
    with caplog.at_level("WARNING", logger="critic"):
        results = judge.compare_each([Pair("Plan a trip.", "Trip plan A", "Trip plan B"), two_conversation_pair()])
    assert all(isinstance(result, Preference) for result in results)
    assert [request.template.name for request in backend.calls] == [
        "skywork-critic", "skywork-critic", "mt-bench-multi-turn", "mt-bench-multi-turn"]
    assert "judged with the mt-bench-multi-turn template; skywork-critic shows one conversation" in caplog.text
    assert judge.describe().template == "skywork-critic"
