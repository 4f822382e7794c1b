"""The transformers backend's engine: prefix sharing, batching invariance, out-of-memory retry, length limits.

Mechanics run on the tiny random Llama (fast); the demo-model check of prefix
sharing lives beside the other demo tests in test_transformers.py.
No timing assertions: speed is measured by benchmarks/throughput.py.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

import pytest

from critic import InputError, Judge, ModelError, Pair
from critic.errors import Reason
from critic.backends._batching import (
    PAD_SEGMENT,
    Family,
    family_row,
    find_families,
    plan_batches,
    split_for_retry,
)
from critic.backends._overflow import CUT_MARKER, _share_cut
from critic.backends._tree_attention import row_layout, tree_attention, tree_attention_mask
from critic.backends.base import VerdictRequest
from critic.backends.transformers import TransformersBackend
from critic.options import BatchLimits
from critic.templates import load_template
from tests.backends.test_transformers import SHORT_PAIRS
from tests.conftest import pandalm_pairs

TOLERANCE = 1e-4


def backend_like(base: TransformersBackend, *, share_prefix: bool = True, **limits) -> TransformersBackend:
    return TransformersBackend(base.model, base.tokenizer, limits=BatchLimits(**limits), share_prefix=share_prefix)


def flat(preferences) -> list[float]:
    """Every number a score-mode judgment carries, in a fixed order."""
    return [x for p in preferences for o in p.orders for x in (o.p_a, o.p_b, o.format_mass)]


def assert_same(left, right, tolerance=TOLERANCE):
    assert len(left) == len(right)
    assert max(abs(a - b) for a, b in zip(left, right, strict=True)) <= tolerance


def requests_for(pairs, mode="score"):
    template = load_template("skywork-critic")
    return [VerdictRequest(shown, template, mode) for pair in pairs for shown in (pair, pair.swapped())]


@pytest.fixture(scope="module")
def mixed_pairs():
    """Short made-up pairs and a few real PandaLM pairs (prompts of a few hundred tokens)."""
    return SHORT_PAIRS + pandalm_pairs(3)


@pytest.fixture(scope="module")
def reference(tiny_backend, mixed_pairs):
    """The plainest path: one prompt per pass, no prefix sharing."""
    return flat(Judge(backend_like(tiny_backend, max_batch_size=1, share_prefix=False)).compare_batch(mixed_pairs))


# --- layout (no model) ----------------------------------------------------------------------


def test_families_group_the_two_orders_and_measure_their_prefix():
    sequences = [[1, 2, 3, 4, 5], [1, 2, 3, 9, 9, 9], [7, 8], [1, 2, 3, 4, 5]]
    families = find_families(sequences, ["p", "p", None, "q"], max_members=4)
    assert families == [Family((0, 1), 3), Family((2,)), Family((3,))]


def test_identical_prompts_keep_a_token_of_their_own():
    families = find_families([[1, 2, 3], [1, 2, 3]], ["p", "p"], max_members=4)
    assert families == [Family((0, 1), 2)]


def test_family_row_holds_the_prefix_once_and_restarts_positions_per_tail():
    row = family_row(Family((0, 1), 2), [[1, 2, 3, 4], [1, 2, 5]])
    assert row.ids == (1, 2, 3, 4, 5)
    assert row.segments == (0, 0, 1, 1, 2)
    assert row.positions == (0, 1, 2, 3, 2)
    assert row.ends == (3, 4)


def test_tree_mask_hides_the_other_tail_and_padding():
    import torch

    segments = torch.tensor([[PAD_SEGMENT, 0, 0, 1, 1, 2]])
    visible = tree_attention_mask(segments, torch.float32)[0, 0] == 0
    assert visible[5].tolist() == [False, True, True, False, False, True]  # tail 2 sees the prefix and itself
    assert visible[4].tolist() == [False, True, True, True, True, False]
    assert visible[0].tolist() == [True, False, False, False, False, False]  # padding sees only itself (no NaN)


def test_plan_batches_counts_family_members_as_prompts():
    batches = list(plan_batches([10, 9, 8, 7], [2, 2, 1, 2], max_prompts=4, max_tokens=1000))
    assert batches == [[0, 1], [2, 3]]
    assert list(plan_batches([50, 40], [1, 1], max_prompts=8, max_tokens=60)) == [[0], [1]]


def test_plan_batches_keeps_every_row_once_within_the_limits():
    import random

    rng = random.Random(0)
    widths = [rng.randint(50, 1500) for _ in range(200)]
    sizes = [rng.choice([1, 2, 2, 4]) for _ in widths]
    batches = list(plan_batches(widths, sizes, max_prompts=16, max_tokens=8000))
    assert sorted(i for batch in batches for i in batch) == list(range(len(widths)))
    for batch in batches:
        widest = max(widths[i] for i in batch)
        assert len(batch) == 1 or (sum(sizes[i] for i in batch) <= 16 and len(batch) * widest <= 8000)


def test_plan_batches_cuts_where_lengths_jump():
    # Filling batches of four would pair the long rows with short ones; the plan keeps them apart.
    batches = list(plan_batches([1000, 990, 300, 290, 280, 270], [1] * 6, max_prompts=4, max_tokens=10**6))
    assert batches == [[0, 1], [2, 3, 4, 5]]


def test_split_for_retry_halves_then_separates_a_family():
    families = [Family((0, 1), 3), Family((2, 3), 3), Family((4,))]
    assert split_for_retry(families) == [[families[0]], families[1:]]
    assert split_for_retry([families[0]]) == [[Family((0,))], [Family((1,))]]
    assert split_for_retry([families[2]]) is None


def test_share_cut_takes_from_the_longer_response_first():
    assert _share_cut(100, 10, 50) == (50, 0)
    assert _share_cut(10, 100, 50) == (0, 50)
    assert _share_cut(60, 60, 20) == (10, 10)
    assert sum(_share_cut(30, 200, 190)) == 190


# --- batching invariance (tiny random model) ------------------------------------------------


@pytest.mark.parametrize("share_prefix", [False, True])
@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_results_do_not_depend_on_batching(tiny_backend, mixed_pairs, reference, share_prefix, batch_size):
    judge = Judge(backend_like(tiny_backend, max_batch_size=batch_size, share_prefix=share_prefix))
    assert_same(flat(judge.compare_batch(mixed_pairs)), reference)
    assert_same(flat(judge.compare_batch(mixed_pairs[::-1])[::-1]), reference)


def test_row_layout_measures_prefix_and_tails():
    row = family_row(Family((0, 1, 2), 3), [[1, 2, 3, 4, 5], [1, 2, 3, 9], [1, 2, 3, 7, 7, 7]])
    assert row_layout(row, offset=4) == (4, 3, (2, 1, 3))
    assert row_layout(family_row(Family((0,)), [[5, 6, 7]]), offset=0) == (0, 0, (3,))


@pytest.mark.parametrize("batch_size", [2, 16])
def test_tree_attention_equals_the_masked_pass(tiny_backend, mixed_pairs, batch_size):
    # Repeated pairs make families of four members; batches mix row widths (left padding).
    pairs = mixed_pairs + mixed_pairs[:2]
    cut = backend_like(tiny_backend, max_batch_size=batch_size)
    masked = backend_like(tiny_backend, max_batch_size=batch_size)
    masked.tree_kernel = False
    assert cut.tree_kernel
    assert_same(flat(Judge(cut).compare_batch(pairs)), flat(Judge(masked).compare_batch(pairs)))


def test_tree_attention_restores_the_models_attention(tiny_backend):
    config = tiny_backend.model.config
    before = config._attn_implementation
    with pytest.raises(RuntimeError), tree_attention(tiny_backend.model):
        assert config._attn_implementation != before
        raise RuntimeError("a failed pass")
    assert config._attn_implementation == before


def test_packed_prompts_equal_padded_ones(tiny_backend, mixed_pairs, reference):
    # The padding-free layout used with flash-attention; on sdpa transformers masks the blocks instead.
    backend = backend_like(tiny_backend, share_prefix=False)
    backend.pack_prompts = True
    assert_same(flat(Judge(backend).compare_batch(mixed_pairs)), reference)


def test_results_do_not_depend_on_the_token_budget(tiny_backend, mixed_pairs, reference):
    judge = Judge(backend_like(tiny_backend, max_batch_tokens=600))
    assert_same(flat(judge.compare_batch(mixed_pairs)), reference)


def test_pairs_judged_separately_equal_pairs_judged_together(tiny_backend, mixed_pairs, reference):
    judge = Judge(tiny_backend)
    assert_same(flat([judge.compare_batch([pair])[0] for pair in mixed_pairs]), reference)


def test_constrained_equals_outlines_through_generate(tiny_backend, mixed_pairs):
    """The one-pass constrained verdict equals greedy constrained decoding by generate."""
    import torch
    from transformers import LogitsProcessorList

    backend = tiny_backend  # its outlines processor is already built by the constrained tests
    requests = requests_for(mixed_pairs, "constrained")
    fast = [output.text for output in backend.run(requests)]
    processor = backend._verdict_processor(requests[0].verdicts)
    slow = []
    for request in requests:
        processor.reset()
        ids = torch.tensor([backend.prompt_ids(request)])
        with torch.inference_mode():
            out = backend.model.generate(
                ids, attention_mask=torch.ones_like(ids), max_new_tokens=3, do_sample=False,
                logits_processor=LogitsProcessorList([processor]), pad_token_id=backend.pad_id,
            )
        new = out[0, ids.shape[1]:].tolist()
        slow.append(backend.tokenizer.decode(list(backend.verdict_tokens.opening) + new, skip_special_tokens=True))
    assert fast == slow


# --- out of memory (simulated on CPU) -------------------------------------------------------


@contextmanager
def out_of_memory_above(model, rows: int):
    """Make every forward pass with more than ``rows`` rows raise CUDA's out-of-memory error.

    Records the rows of each pass that went through.
    """
    import torch

    completed: list[int] = []

    def hook(module, args, kwargs):
        batch = kwargs["input_ids"].shape[0]
        if batch > rows:
            raise torch.cuda.OutOfMemoryError(f"simulated: {batch} rows")
        completed.append(batch)

    handle = model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield completed
    finally:
        handle.remove()


@pytest.mark.parametrize("share_prefix", [False, True])
def test_out_of_memory_halves_the_batch_and_loses_nothing(tiny_backend, mixed_pairs, reference, share_prefix, caplog):
    backend = backend_like(tiny_backend, max_batch_size=16, share_prefix=share_prefix)
    judged: list[int] = []
    forward = backend._next_token_logits

    def counting(families, sequences):
        logits = forward(families, sequences)  # raises before counting when the pass runs out of memory
        judged.extend(index for family in families for index in family.members)
        return logits

    backend._next_token_logits = counting  # type: ignore[method-assign]
    with out_of_memory_above(backend.model, 1) as completed, caplog.at_level(logging.WARNING, logger="critic"):
        results = Judge(backend).compare_batch(mixed_pairs)
    assert_same(flat(results), reference)
    assert set(completed) == {1}
    assert sorted(judged) == list(range(2 * len(mixed_pairs)))  # every prompt judged exactly once
    assert "retrying them in two halves" in caplog.text


def test_out_of_memory_on_one_prompt_fails_that_prompt_only(tiny_backend):
    import torch

    backend = backend_like(tiny_backend, share_prefix=False)
    long_pair, short_pair = Pair("Explain. " * 40, "a", "b"), Pair("Hi", "a", "b")
    limit = len(backend.prompt_ids(requests_for([short_pair])[0])) + 1

    def hook(module, args, kwargs):
        if kwargs["input_ids"].shape[1] > limit:
            raise torch.cuda.OutOfMemoryError("simulated")

    handle = backend.model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        results = Judge(backend).compare_each([long_pair, short_pair])
    finally:
        handle.remove()
    assert isinstance(results[0], ModelError) and "out of GPU memory on a single prompt" in str(results[0])
    assert results[0].kind is Reason.MODEL_FAILURE
    assert not isinstance(results[1], Exception)


# --- length limits --------------------------------------------------------------------------


LONG_PAIR = Pair("Summarise the story.", "Once upon a time " * 60 + "THE END A", "It was " * 40 + "THE END B")


@pytest.fixture(params=["transformers", pytest.param("vllm", marks=pytest.mark.model)])
def limited(request, tiny_backend):
    """Builds a backend with the given limits on each engine: the tiny Llama on transformers, the demo on vLLM.

    Both backends count and fit prompts with the same code (``PromptEncoder.fit``); these tests hold it
    to the same behaviour on each.
    """
    if request.param == "transformers":
        return lambda **limits: backend_like(tiny_backend, **limits)
    from critic.backends.vllm import VLLMBackend

    base = request.getfixturevalue("demo_vllm_backend")
    return lambda **limits: VLLMBackend(base.engine, base.tokenizer, base.generation_config,
                                        limits=BatchLimits(**limits))


def test_too_long_is_a_per_pair_error_by_default(limited):
    backend = limited(max_length=300)
    results = Judge(backend).compare_each([LONG_PAIR, SHORT_PAIRS[0]])
    assert isinstance(results[0], InputError)
    message = str(results[0])
    assert "the model reads at most 300" in message
    # Said for both audiences: Python users set overflow=, command-line users type --overflow.
    assert "overflow='truncate' (--overflow truncate)" in message and "max_length (--max-length)" in message
    assert results[0].kind is Reason.TOO_LONG
    assert not isinstance(results[1], Exception)


def test_default_limit_is_the_models_context_and_never_more(tiny_backend):
    context = tiny_backend.model.config.max_position_embeddings
    assert backend_like(tiny_backend).max_length == context
    assert backend_like(tiny_backend, max_length=10 * context).max_length == context
    assert backend_like(tiny_backend, max_length=300).max_length == 300


def test_generate_reserves_room_for_new_tokens(limited):
    backend = limited(max_length=250)
    (result,) = Judge(backend, mode="generate", max_new_tokens=200, swap=False).compare_each([SHORT_PAIRS[0]])
    assert isinstance(result, InputError) and "plus 200 new tokens" in str(result)


def test_truncate_cuts_responses_in_the_middle_visibly(limited, caplog):
    backend = limited(max_length=300, overflow="truncate")
    requests = requests_for([LONG_PAIR])
    seen = []
    original = backend.encoder.prompt_ids

    def recording(request):
        seen.append(request)
        return original(request)

    backend.encoder.prompt_ids = recording  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="critic"):
        outputs = backend.run(requests)
    assert all(output.error is None and output.letter_probs for output in outputs)
    assert "shortened a pair" in caplog.text
    judged = [r for r in seen if "tokens cut by critic" in r.pair.response_a + r.pair.response_b]
    ab = next(r.pair for r in judged if r.pair.prompt == LONG_PAIR.prompt and r.pair.response_a.startswith("Once"))
    ba = next(r.pair for r in judged if r.pair.response_a.startswith("It was"))
    assert (ab.response_a, ab.response_b) == (ba.response_b, ba.response_a)  # both orders see the same texts
    assert ab.response_a.startswith("Once upon a time") and ab.response_a.endswith("THE END A")
    assert CUT_MARKER.split("{")[0] in ab.response_a
    assert all(len(original(r)) <= 300 for r in judged)


def test_truncate_gives_an_error_when_the_question_alone_is_too_long(limited):
    backend = limited(max_length=120, overflow="truncate")
    (result,) = Judge(backend).compare_each([Pair("Why? " * 200, "a", "b")])
    assert isinstance(result, InputError) and "cannot fit 120" in str(result) and result.kind is Reason.TOO_LONG


@pytest.mark.parametrize("overflow", ["error", "truncate"])
def test_text_the_tokenizer_cannot_take_fails_only_its_pair(limited, monkeypatch, overflow):
    backend = limited(max_length=300, overflow=overflow)
    original = backend.tokenizer.apply_chat_template

    def fussy(conversation, **options):
        if any("UNREADABLE" in message["content"] for message in conversation):
            raise TypeError("TextEncodeInput must be Union[TextInputSequence, Tuple[InputSequence, InputSequence]]")
        return original(conversation, **options)

    monkeypatch.setattr(backend.tokenizer, "apply_chat_template", fussy)
    pairs = [SHORT_PAIRS[0], Pair("q", "UNREADABLE", "b"), LONG_PAIR, SHORT_PAIRS[1]]
    results = Judge(backend).compare_each(pairs)
    error = results[1]
    assert isinstance(error, InputError) and error.kind is Reason.BAD_TEXT and error.pair_index == 1
    assert "tokenizer could not read this judge prompt" in str(error) and "TypeError" in str(error)
    assert not isinstance(results[0], Exception) and not isinstance(results[3], Exception)
    assert isinstance(results[2], InputError) != (overflow == "truncate")  # too long: fails, or is shortened
