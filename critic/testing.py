"""Helpers for testing code that uses critic, without a model.

``FakeBackend`` answers verdict requests from a script, so a pipeline built on
:class:`critic.Judge` can be tested in milliseconds::

    from critic import Judge
    from critic.testing import FakeBackend

    judge = Judge(FakeBackend.scripted([0.9, 0.2]))   # P(first shown wins) per order
    assert judge.compare("q", "good", "bad").label == "A"

``FakeScorer`` does the same for :class:`critic.RewardJudge`. To exercise the
transformers mechanics without downloading anything, ``tiny_tokenizer`` builds a
small ChatML tokenizer in-process and ``tiny_reward_model`` a real but tiny,
randomly initialised reward model for it (its scores mean nothing)::

    from critic import RewardJudge
    from critic.testing import FakeScorer

    judge = RewardJudge(FakeScorer.by_response({"good": 1.0, "bad": -1.0}))
    assert judge.compare("q", "good", "bad").label == "A"

    from critic.backends.reward import TransformersRewardScorer
    from critic.testing import tiny_reward_model, tiny_tokenizer

    tokenizer = tiny_tokenizer()
    scorer = TransformersRewardScorer(tiny_reward_model(tokenizer), tokenizer)
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from critic.backends.fake import FakeBackend, letter_output
from critic.backends.fake_reward import FakeScorer

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, PreTrainedTokenizerFast

__all__ = ["FakeBackend", "FakeScorer", "letter_output", "tiny_reward_model", "tiny_tokenizer"]

TINY_SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")  # pad, bos, eos (ids 0, 1, 2)
TINY_SYSTEM_MESSAGE = "You are a helpful AI assistant named Tiny, made for tests."
# ChatML as SmolLM2 writes it: a default system message when the conversation has none.
TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\n" + TINY_SYSTEM_MESSAGE + "<|im_end|>\\n' }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# Everyday English for the merges besides the built-in prompts, so test prompts read as words, not bytes.
_TINY_CORPUS = """
The user asked a question and the assistant gave an answer. Which answer is better, and why? Please explain.
Once upon a time there was a story. It was the end. THE END. What is the capital of France? Paris is on the Seine.
Name a primary colour: red, yellow or blue. Say hi. Hello there, how can I help you today? Yes, no, maybe.
Is seven prime? Its only divisors are one and itself. Summarise the story in one sentence. Write a poem.
This is a good response because it is correct, clear and helpful; that one is wrong, vague or too long.
The first response is more accurate than the second response, which has a mistake in the last step.
It was late. Why? How? When? Where? Who? It is what it is. Thank you. You are welcome. I think so.
Digits one by one: 0 1 2 3 4 5 6 7 8 9. Marks: ... [...] (...) tokens cut by critic ...
"""


def tiny_reward_model(
    tokenizer: PreTrainedTokenizerBase, *, seed: int = 0, max_position_embeddings: int = 2048
) -> PreTrainedModel:
    """A tiny randomly initialised ``LlamaForSequenceClassification`` (one label) for ``tokenizer``.

    Real mechanics (chat template, padding, pooling, context limit), MEANINGLESS
    scores: its weights are random. For tests and dry runs only.
    """
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=pad,
        architectures=["LlamaForSequenceClassification"],
    )
    config.num_labels = 1
    with torch.random.fork_rng(devices=[]):  # a fixed seed without touching the caller's RNG
        torch.manual_seed(seed)
        model = LlamaForSequenceClassification(config)
    return model.eval()


def tiny_tokenizer(*, vocab_size: int = 2048) -> PreTrainedTokenizerFast:
    """A small byte-level BPE tokenizer with a ChatML chat template, built in-process (no download).

    Its merges are trained (deterministically) on critic's built-in prompts and a
    little English, so judge prompts take about as many tokens as with a real
    tokenizer; any text round-trips through its byte alphabet. ``[[A]]`` reads as
    ``[[`` + one token per letter + ``]]``, as judges need. The special tokens are
    ``<|endoftext|>`` (padding), ``<|im_start|>`` (bos) and ``<|im_end|>`` (eos).
    For tests and dry runs with :func:`tiny_reward_model` or a tiny causal LM.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    folder = resources.files("critic.prompts")
    corpus = [entry.read_text(encoding="utf-8") for entry in sorted(folder.iterdir(), key=lambda entry: entry.name)
              if entry.name.endswith(".jinja")]
    corpus += [_TINY_CORPUS, TINY_SYSTEM_MESSAGE]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(TINY_SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    pad, bos, eos = TINY_SPECIAL_TOKENS
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=bos,
        eos_token=eos,
        pad_token=pad,
        unk_token=pad,
        chat_template=TINY_CHAT_TEMPLATE,
        model_max_length=4096,
    )
