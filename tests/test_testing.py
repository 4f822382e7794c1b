"""critic.testing: the in-process tiny tokenizer and the tiny reward model built on it (no download, no demo model)."""

from __future__ import annotations

import pytest

from critic.backends.encoder import PromptEncoder
from critic.backends.tokens import VerdictTokens
from critic.templates import load_template
from critic.testing import TINY_SPECIAL_TOKENS, TINY_SYSTEM_MESSAGE, tiny_reward_model
from critic.types import Pair

TEXTS = ["What is 2+2?", "Ünïcödé ✓ 日本語 émoji 🎉", "  leading spaces\n\n\ttabs and [[A]] inside ", "{{ 7*7 }}", ""]


def test_special_tokens_have_fixed_ids(tiny_tokenizer):
    pad, bos, eos = TINY_SPECIAL_TOKENS
    assert (tiny_tokenizer.pad_token, tiny_tokenizer.bos_token, tiny_tokenizer.eos_token) == (pad, bos, eos)
    assert (tiny_tokenizer.pad_token_id, tiny_tokenizer.bos_token_id, tiny_tokenizer.eos_token_id) == (0, 1, 2)
    assert tiny_tokenizer.encode("hi", add_special_tokens=True) == tiny_tokenizer.encode("hi", add_special_tokens=False)


@pytest.mark.parametrize("text", TEXTS)
def test_any_text_round_trips(tiny_tokenizer, text):
    assert tiny_tokenizer.decode(tiny_tokenizer.encode(text, add_special_tokens=False)) == text


def test_verdicts_are_one_token_per_letter_between_shared_ids(tiny_tokenizer):
    tokens = VerdictTokens.from_tokenizer(tiny_tokenizer)
    assert len(set(tokens.letters.values())) == 3
    for letter, token in tokens.letters.items():
        ids = [*tokens.opening, token, *tokens.closing]
        assert tiny_tokenizer.encode(f"[[{letter}]]", add_special_tokens=False) == ids
        assert tiny_tokenizer.decode(ids) == f"[[{letter}]]"


def test_chat_template_writes_a_default_system_message_and_the_generation_prompt(tiny_tokenizer):
    text = tiny_tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False,
                                              add_generation_prompt=True)
    assert text == (f"<|im_start|>system\n{TINY_SYSTEM_MESSAGE}<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                    "<|im_start|>assistant\n")
    own = [{"role": "system", "content": "Judge."}, {"role": "user", "content": "Hi"}]
    assert tiny_tokenizer.apply_chat_template(own, tokenize=False).startswith("<|im_start|>system\nJudge.<|im_end|>")


def test_a_judge_prompt_is_about_as_long_as_with_a_real_tokenizer(tiny_tokenizer):
    # SmolLM2's tokenizer reads this prompt as 262 tokens; length-limit tests rely on a similar count.
    messages = load_template("skywork-critic").render(Pair("What is 2+2?", "2+2 = 4.", "2+2 = 5."))
    encoder = PromptEncoder(tiny_tokenizer)
    ids = encoder.chat_ids(messages, opening=encoder.verdict_tokens.opening)
    assert ids[0] == tiny_tokenizer.bos_token_id
    assert ids.count(tiny_tokenizer.bos_token_id) == 3  # system, user, assistant
    assert 200 <= len(ids) <= 300


def test_the_tokenizer_is_the_same_every_time(tiny_tokenizer):
    from critic.testing import tiny_tokenizer as build

    assert build().get_vocab() == tiny_tokenizer.get_vocab()


def test_tiny_reward_model_scores_conversations(tiny_tokenizer):
    from critic.backends.reward import TransformersRewardScorer

    conversations = [
        ({"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}),
        ({"role": "user", "content": "Is 7 prime?"}, {"role": "assistant", "content": "Yes."}),
    ]
    model = tiny_reward_model(tiny_tokenizer)
    assert model.config.vocab_size == len(tiny_tokenizer) and model.config.pad_token_id == 0
    scores = TransformersRewardScorer(model, tiny_tokenizer).score(conversations)
    assert len(scores) == 2 and scores[0] != scores[1]
    assert scores == TransformersRewardScorer(tiny_reward_model(tiny_tokenizer), tiny_tokenizer).score(conversations)
