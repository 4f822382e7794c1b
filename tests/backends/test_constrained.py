"""Constrained mode: outlines' bare regex logits processor behind the verdict, on the tiny random Llama."""

from __future__ import annotations

import pytest

from critic import Judge, Pair
from critic.backends.encoder import PromptEncoder
from critic.backends.transformers import TransformersBackend
from critic.options import BatchLimits

pytest.importorskip("outlines")

PAIRS = [
    Pair("What is 2+2?", "4", "5"),
    Pair("Capital of France?", "Paris.", "Berlin, which is in Germany."),
    Pair("Name a primary colour.", "Red.", "Green is a colour."),
    Pair("Say hi.", "Hi!", "Hello there, how can I help you today?"),
    Pair("Is 7 prime?", "Yes.", "No, 7 = 7 * 1 is not prime."),
]


def allowed_first_tokens(tokenizer, tails: tuple[str, ...]) -> set[int]:
    """The oracle: every token whose text starts one of the tails (the grammar's possible first steps)."""
    allowed, encoder = set(), PromptEncoder(tokenizer)
    for token in range(len(tokenizer)):
        text = encoder.decode([token])
        if text and any(tail.startswith(text) for tail in tails):
            allowed.add(token)
    return allowed


@pytest.mark.parametrize(("batch_size", "batches"), [(2, [2, 2, 2, 2, 2]), (4, [4, 4, 2]), (6, [6, 4])])
def test_constrained_verdict_is_the_score_argmax_across_uneven_batches(tiny_backend, batch_size, batches):
    # 5 pairs = 10 prompts in families of 2 (a pair's two orders, never split), so the one cached processor is
    # reset and re-sized between batches of different sizes.
    backend = TransformersBackend(tiny_backend.model, tiny_backend.tokenizer, limits=BatchLimits(batch_size))
    scored = Judge(backend, mode="score").compare_batch(PAIRS)
    constrained, seen = backend._constrained, []

    def recording(families, sequences, verdicts):
        seen.append(sum(len(family.members) for family in families))
        return constrained(families, sequences, verdicts)

    backend._constrained = recording  # type: ignore[method-assign]
    forced = Judge(backend, mode="constrained").compare_batch(PAIRS)
    assert seen == batches
    assert [o.verdict for p in forced for o in p.orders] == [o.verdict for p in scored for o in p.orders]


def test_processor_masks_to_the_verdict_grammar_and_resets_between_batches(tiny_backend):
    import torch

    tokenizer = tiny_backend.tokenizer
    closing = tiny_backend.encoder.decode(tiny_backend.verdict_tokens.closing)
    verdicts = ("A", "B")
    allowed = allowed_first_tokens(tokenizer, tuple(f"{letter}{closing}" for letter in verdicts))
    assert {tiny_backend.verdict_tokens.letters[letter] for letter in verdicts} <= allowed
    processor = tiny_backend._verdict_processor(verdicts)
    assert tiny_backend._verdict_processor(verdicts) is processor  # built once per letter set
    opening = tiny_backend.verdict_tokens.opening[-1]
    generator = torch.Generator().manual_seed(0)
    for rows in (3, 2):  # two batches of different sizes, as _constrained runs them
        processor.reset()
        logits = torch.randn(rows, len(tokenizer), generator=generator)
        with torch.inference_mode():
            masked = processor(torch.tensor([[opening]] * rows), logits.clone())
        assert masked.shape == logits.shape
        for row in range(rows):
            kept = {int(token) for token in torch.isfinite(masked[row]).nonzero().flatten()}
            assert kept == allowed
            assert torch.equal(masked[row, sorted(kept)], logits[row, sorted(kept)])  # kept logits untouched
