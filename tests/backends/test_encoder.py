"""PromptEncoder: the one place prompts become ids and ids become verdicts, for every backend alike."""

from __future__ import annotations

import math

import pytest

from critic import InputError, ModelError, Pair
from critic.backends.base import BackendOutput, VerdictRequest
from critic.backends.encoder import PromptEncoder
from critic.errors import Reason
from critic.templates import load_template
from tests.conftest import pandalm_pairs, uses_demo_model

TEMPLATE = load_template("skywork-critic")
PAIR = Pair("What is 2+2?", "2+2 = 4.", "2+2 = 5.")


@pytest.fixture(scope="module")
def encoder(tiny_tokenizer):
    return PromptEncoder(tiny_tokenizer, max_length=300)


def request(pair: Pair = PAIR, mode: str = "score", **kwargs) -> VerdictRequest:
    return VerdictRequest(pair, TEMPLATE, mode, **kwargs)  # type: ignore[arg-type]


def test_score_and_constrained_prompts_end_with_the_verdict_opening(encoder):
    opening = list(encoder.verdict_tokens.opening)
    generate = encoder.prompt_ids(request(mode="generate"))
    assert encoder.prompt_ids(request()) == generate + opening == encoder.prompt_ids(request(mode="constrained"))
    assert encoder.chat_ids(TEMPLATE.render(PAIR)) == generate
    assert encoder.decode(encoder.prompt_ids(request())).endswith("<|im_start|>assistant\n[[")


def test_fit_counts_fails_and_keeps_order(encoder):
    long = Pair("Summarise.", "Once upon a time " * 80, "It was " * 40)
    fitted = encoder.fit([request(), request(long), request()])
    assert fitted[0] == fitted[2] == encoder.prompt_ids(request())
    error = fitted[1]
    assert isinstance(error, BackendOutput) and isinstance(error.error, InputError)
    assert error.error.kind is Reason.TOO_LONG and "overflow='truncate' (--overflow truncate)" in str(error.error)
    shortened = PromptEncoder(encoder.tokenizer, max_length=300, overflow="truncate").fit([request(long)])
    assert isinstance(shortened[0], list) and len(shortened[0]) <= 300


def test_letter_ids_and_probabilities_from_log_probabilities(encoder):
    ids = encoder.letter_ids(("A", "B"))
    assert ids == [encoder.verdict_tokens.letters["A"], encoder.verdict_tokens.letters["B"]]
    probs = encoder.letter_probs({ids[0]: math.log(0.6), ids[1]: math.log(0.3), 7: -0.1}, ("A", "B"))
    assert probs == pytest.approx({"A": 0.6, "B": 0.3})
    with pytest.raises(ModelError, match="no log-probability for verdict letter\\(s\\) B"):
        encoder.letter_probs({ids[0]: -0.5}, ("A", "B"))  # a missing letter is an error, never a zero


def test_the_constrained_verdict_text_and_a_broken_constraint(encoder):
    letter_b = encoder.verdict_tokens.letters["B"]
    assert encoder.constrained_verdict(letter_b, ("A", "B")) == "[[B]]" == encoder.verdict_text("B")
    with pytest.raises(ModelError, match="the verdict constraint let through token"):
        encoder.constrained_verdict(encoder.verdict_tokens.letters["C"], ("A", "B"))


def test_generated_text_stops_at_the_end_of_turn(tiny_tokenizer):
    encoder = PromptEncoder(tiny_tokenizer)
    eos = tiny_tokenizer.eos_token_id
    assert encoder.stop_ids == [eos]
    ids = tiny_tokenizer.encode("[[A]] because", add_special_tokens=False)
    after = tiny_tokenizer.encode(" never read", add_special_tokens=False)
    assert encoder.until_stop([*ids, eos, *after]) == ids
    assert encoder.generated_text([*ids, eos, *after]) == "[[A]] because"


def test_conversations_get_one_bos_and_the_limit(tiny_tokenizer):
    encoder = PromptEncoder(tiny_tokenizer, max_length=40)
    short = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    long = [{"role": "user", "content": "Hi " * 50}, {"role": "assistant", "content": "Hello"}]
    ids, error = encoder.encode_conversations([short, long])
    assert ids == encoder.conversation_ids(short) and ids.count(tiny_tokenizer.bos_token_id) == 3  # ChatML turns
    assert isinstance(error, InputError) and error.kind is Reason.TOO_LONG and "max_length (--max-length)" in str(error)


def test_an_unknown_overflow_policy_is_refused(tiny_tokenizer):
    with pytest.raises(InputError, match="unknown overflow policy 'drop'"):
        PromptEncoder(tiny_tokenizer, overflow="drop")  # type: ignore[arg-type]


@uses_demo_model
def test_the_tokenizer_alone_gives_the_loaded_backends_ids(demo_backend):
    # A backend whose model runs elsewhere (a server) builds its encoder from the tokenizer alone.
    alone = PromptEncoder.from_pretrained("demo")
    requests = [request(pair, mode) for pair in pandalm_pairs(4) for mode in ("score", "generate")]
    assert [alone.prompt_ids(r) for r in requests] == [demo_backend.prompt_ids(r) for r in requests]
    assert alone.stop_ids == demo_backend.encoder.stop_ids
    assert alone.verdict_tokens == demo_backend.verdict_tokens
