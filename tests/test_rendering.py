"""render_messages / render_prompt: a pair's prompt, histories included, before anything is judged."""

from __future__ import annotations

from pathlib import Path

import pytest

import critic
from critic.backends.encoder import PromptEncoder
from critic.errors import InputError
from critic.rendering import pair_messages, pair_prompt
from critic.templates import load_template
from critic.types import Pair

Q1, Q2 = "Write a haiku about rain.", "Now make it about snow."
SHARED = [{"role": "user", "content": Q1}, {"role": "assistant", "content": "Rain taps the window."}]
HISTORY_A = [{"role": "user", "content": Q1}, {"role": "assistant", "content": "Grey clouds weep softly."}]
HISTORY_B = [{"role": "user", "content": Q1}, {"role": "assistant", "content": "It is raining."}]
MATH_REFERENCE = [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"}]


@pytest.mark.parametrize(
    ("template", "fields"),
    [
        ("skywork-critic", {"history": SHARED}),
        ("mt-bench", {"history": SHARED}),
        ("mt-bench-multi-turn", {"history": SHARED}),
        ("mt-bench-multi-turn", {"history_a": HISTORY_A, "history_b": HISTORY_B}),
        ("mt-bench-math-multi-turn", {"history_a": HISTORY_A, "history_b": HISTORY_B, "reference": "6",
                                      "reference_history": MATH_REFERENCE}),
    ],
)
def test_render_messages_takes_every_history_a_pair_can_hold(template, fields):
    messages = critic.render_messages(Q2, "Snow hushes all.", "It snows.", template=template, **fields)
    pair = Pair(Q2, "Snow hushes all.", "It snows.", **{name: tuple(value) if isinstance(value, list) else value
                                                          for name, value in fields.items()})
    assert messages == load_template(template).render(pair)  # the judge's own rendering of the same pair
    shown = "".join(message["content"] for message in messages)
    for turns in (fields.get(name, []) for name in ("history", "history_a", "history_b", "reference_history")):
        for turn in turns:
            assert turn["content"] in shown


def test_each_conversation_is_shown_beside_its_own_answer():
    messages = critic.render_messages(Q2, "Snow hushes all.", "It snows.", history_a=HISTORY_A, history_b=HISTORY_B,
                                      template="mt-bench-multi-turn")
    user = messages[-1]["content"]
    a_part, b_part = user.split("<|The Start of Assistant B's Conversation with User|>")
    assert "Grey clouds weep softly." in a_part and "Snow hushes all." in a_part and "It is raining." not in a_part
    assert "It is raining." in b_part and "It snows." in b_part and "Grey clouds" not in b_part


def test_two_conversations_are_shown_as_the_judge_shows_them():
    # The default template shows one conversation: the judge switches to MT-Bench's multi-turn prompt, and so
    # does the preview (what critic prompt shows is what the model reads).
    pair = Pair(Q2, "a", "b", history_a=tuple(HISTORY_A), history_b=tuple(HISTORY_B))
    shown = critic.render_messages(Q2, "a", "b", history_a=HISTORY_A, history_b=HISTORY_B)
    assert shown == load_template("mt-bench-multi-turn").render(pair)


def test_two_conversations_need_a_template_that_shows_both(tmp_path):
    own = tmp_path / "mine.jinja"  # the card's prompt as a user's own template: it has no multi-turn variant
    own.write_text((Path(__file__).parents[1] / "prompts" / "skywork-critic.jinja").read_text(encoding="utf-8"),
                   encoding="utf-8")
    with pytest.raises(InputError, match="mt-bench-multi-turn"):
        critic.render_messages(Q2, "a", "b", history_a=HISTORY_A, history_b=HISTORY_B, template=str(own))


def test_a_history_that_is_not_a_message_list_is_refused():
    with pytest.raises(InputError, match="history"):
        critic.render_messages(Q2, "a", "b", history=[{"role": "narrator", "content": "x"}])


@pytest.mark.parametrize("mode", ["score", "generate"])
def test_render_prompt_with_histories_is_what_the_model_reads(tiny_tokenizer, mode):
    template = load_template("mt-bench-multi-turn")
    text = critic.render_prompt(Q2, "Snow hushes all.", "It snows.", history_a=HISTORY_A, history_b=HISTORY_B,
                                tokenizer=tiny_tokenizer, template=template, mode=mode)
    pair = Pair(Q2, "Snow hushes all.", "It snows.", history_a=tuple(HISTORY_A), history_b=tuple(HISTORY_B))
    encoder = PromptEncoder(tiny_tokenizer)
    opening = encoder.verdict_tokens.opening if mode == "score" else ()
    ids = encoder.chat_ids(template.render(pair), opening=opening)
    assert text == tiny_tokenizer.decode(ids, skip_special_tokens=False)
    assert text == pair_prompt(pair, tokenizer=tiny_tokenizer, template=template, mode=mode)
    assert text.endswith("[[") == (mode == "score")
    assert "Grey clouds weep softly." in text and "It is raining." in text


def test_pair_messages_is_the_template_rendering():
    pair = Pair(Q2, "a", "b", history=tuple(SHARED))
    assert pair_messages(pair) == load_template("skywork-critic").render(pair)
