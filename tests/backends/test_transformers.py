"""The transformers backend on a tiny random Llama (mechanics) and on the demo model (real outputs)."""

from __future__ import annotations

import pytest

from critic import Judge, Pair
from critic.backends.encoder import PromptEncoder
from critic.backends.tokens import VerdictTokens
from critic.backends.transformers import TransformersBackend
from critic.options import BatchLimits
from critic.templates import load_template
from tests.conftest import pandalm_pairs, shared_path

SHORT_PAIRS = [
    Pair("What is 2+2?", "2+2 = 4.", "2+2 = 5."),
    Pair("What is the capital of France?", "Berlin.", "The capital of France is Paris, on the Seine."),
    Pair("Name a primary colour.", "Red.", "A banana is yellow, which is a colour, but is it primary? No."),
    Pair("Say hi.", "Hi!", "Hello there, how can I help you today?"),
    Pair("Is 7 prime?", "Yes, 7 is prime: its only divisors are 1 and 7.", "No."),
]


def probabilities(preferences):
    return [(order.p_a, order.p_b, order.format_mass) for preference in preferences for order in preference.orders]


def assert_close(left, right, tolerance):
    assert len(left) == len(right)
    for a, b in zip(left, right, strict=True):
        assert a == pytest.approx(b, abs=tolerance)


# --- tokens and prompts ---------------------------------------------------------------------


def test_llama3_verdict_tokens_are_opening_letter_closing():
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(shared_path("fixtures", "llama3-tokenizer"))
    tokens = VerdictTokens.from_tokenizer(tokenizer)
    assert tokens.opening == (15873,)
    assert tokens.letters == {"A": 32, "B": 33, "C": 34}
    assert tokens.closing == (5163,)


def test_llama3_prompt_has_exactly_one_bos():
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(shared_path("fixtures", "llama3-tokenizer"))
    messages = load_template("skywork-critic").render(SHORT_PAIRS[0])
    encoder = PromptEncoder(tokenizer)
    ids = encoder.chat_ids(messages, opening=encoder.verdict_tokens.opening)
    assert ids[0] == tokenizer.bos_token_id == 128000
    assert ids.count(128000) == 1
    assert ids[-1] == 15873  # the prefilled "[["
    # The trap this avoids: rendering to text and tokenising again writes the BOS twice.
    text = tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
    assert tokenizer(text)["input_ids"][:2] == [128000, 128000]


def test_demo_verdict_tokens(demo_backend):
    tokens = demo_backend.verdict_tokens
    assert tokens.opening == (32803,)
    assert tokens.letters["A"] == 49 and tokens.letters["B"] == 50
    assert tokens.closing == (7896,)


# --- tiny random model: mechanics -----------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 2, 5])
def test_score_does_not_depend_on_batch_size(tiny_backend, batch_size):
    reference = Judge(TransformersBackend(tiny_backend.model, tiny_backend.tokenizer, limits=BatchLimits(1)))
    batched = Judge(TransformersBackend(tiny_backend.model, tiny_backend.tokenizer, limits=BatchLimits(batch_size)))
    assert_close(
        [x for row in probabilities(batched.compare_batch(SHORT_PAIRS)) for x in row],
        [x for row in probabilities(reference.compare_batch(SHORT_PAIRS)) for x in row],
        1e-4,
    )


def test_score_does_not_depend_on_pair_order(tiny_backend):
    judge = Judge(tiny_backend)
    forward = judge.compare_batch(SHORT_PAIRS)
    backward = judge.compare_batch(SHORT_PAIRS[::-1])[::-1]
    assert_close([p.p_a for p in forward], [p.p_a for p in backward], 1e-4)


def test_tiny_constrained_matches_score_argmax(tiny_backend):
    scored = Judge(tiny_backend, mode="score").compare_batch(SHORT_PAIRS)
    forced = Judge(tiny_backend, mode="constrained").compare_batch(SHORT_PAIRS)
    assert [o.verdict for p in forced for o in p.orders] == [o.verdict for p in scored for o in p.orders]


def test_tiny_generate_returns_text_and_reports_missing_verdicts(tiny_backend):
    judge = Judge(tiny_backend, mode="generate", max_new_tokens=4)
    results = judge.compare_each(SHORT_PAIRS[:2])
    # Random weights write random tokens: each pair either parsed or carries a VerdictError, never a guess.
    from critic import Preference, VerdictError

    for result in results:
        assert isinstance(result, (Preference, VerdictError))
        if isinstance(result, VerdictError):
            assert result.reason in {"no verdict", "tie not allowed", "ambiguous"}


# --- demo model: real outputs ---------------------------------------------------------------


@pytest.fixture(scope="module")
def pandalm_eight():
    return pandalm_pairs(8)


@pytest.fixture(scope="module")
def demo_scores(demo_backend, pandalm_eight):
    return Judge(demo_backend, mode="score").compare_batch(pandalm_eight)


def test_demo_score_probabilities_are_well_formed(demo_scores):
    for preference in demo_scores:
        assert 0.0 <= preference.p_a <= 1.0
        assert preference.label in {"A", "B", "tie"}
        for order in preference.orders:
            assert order.p_a + order.p_b == pytest.approx(1.0)
            assert 0.0 < order.format_mass <= 1.0


def test_demo_batched_equals_one_at_a_time(demo_backend, pandalm_eight, demo_scores):
    judge = Judge(demo_backend, mode="score")
    single = [judge.compare_batch([pair])[0] for pair in pandalm_eight]
    assert_close(
        [x for row in probabilities(demo_scores) for x in row],
        [x for row in probabilities(single) for x in row],
        1e-4,
    )


def test_demo_prefix_sharing_matches_plain_path(demo_backend, pandalm_eight, demo_scores):
    # demo_scores shares each pair's prefix between its two orders; this judges them apart.
    plain = TransformersBackend(demo_backend.model, demo_backend.tokenizer, share_prefix=False)
    separate = Judge(plain, mode="score").compare_batch(pandalm_eight[:2])
    assert_close(
        [x for row in probabilities(separate) for x in row],
        [x for row in probabilities(demo_scores[:2]) for x in row],
        1e-4,
    )


def test_demo_constrained_equals_score_argmax(demo_backend, pandalm_eight, demo_scores):
    constrained = Judge(demo_backend, mode="constrained").compare_batch(pandalm_eight)
    assert [o.verdict for p in constrained for o in p.orders] == [o.verdict for p in demo_scores for o in p.orders]
    assert all(o.text is None and o.format_mass is None for p in constrained for o in p.orders)


def test_demo_mt_bench_generate_forces_verdict_after_explanation(demo_backend):
    judge = Judge(demo_backend, template="mt-bench", mode="generate", max_new_tokens=12, swap=False)
    preference = judge.compare("What is 2+2?", "4", "5")
    (order,) = preference.orders
    # 12 tokens are too few for the 135M model to finish an explanation, so the verdict is forced.
    assert order.forced
    assert order.text is not None and order.text.endswith(f"[[{order.verdict}]]")
    assert order.verdict in {"A", "B", "C"}
