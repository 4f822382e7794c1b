"""The policy's chat markup taken off OpenRLHF's prompt and response text: table-driven, then property-checked
against the real Llama-3 chat template (../shared) and the in-process ChatML one."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from critic.serve.policy_text import read_prompt, split_transcript, strip_end_of_turn

from ..conftest import shared_path

SYSTEM = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
LLAMA = "<|begin_of_text|><|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>"
TURN = "<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>"
LLAMA_OPEN = "<|start_header_id|>assistant<|end_header_id|>\n\n"
USER_HI, BOT_YO = {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}


@pytest.mark.parametrize(("prompt", "history", "question"), [
    # ChatML (Qwen, SmolLM2...): the system prompt is the policy's, left out
    (SYSTEM + "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n", (), "What is 2+2?"),
    ("<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n", (), "What is 2+2?"),
    (SYSTEM + "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nYo<|im_end|>\n<|im_start|>user\nAnd 3+3?"
              "<|im_end|>\n<|im_start|>assistant\n", (USER_HI, BOT_YO), "And 3+3?"),
    ("<|im_start|>user\nMulti\nline\n<|im_end|>\n<|im_start|>assistant\n", (), "Multi\nline\n"),
    ("<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n", (), "Q"),  # Qwen3, no think
    # Llama 3 (its 3.1 template's dated system message is left out too)
    (LLAMA.format(role="system", content="Cutting Knowledge Date: December 2023") +
     TURN.format(role="user", content="What is 2+2?") + LLAMA_OPEN, (), "What is 2+2?"),
    ("<|begin_of_text|>" + TURN.format(role="user", content="Hi") + TURN.format(role="assistant", content="Yo") +
     TURN.format(role="user", content="And 3+3?") + LLAMA_OPEN, (USER_HI, BOT_YO), "And 3+3?"),
    # anything else is the question as it is
    ("What is 2+2?", (), "What is 2+2?"),
    ("Question: What is 2+2?\nAnswer:", (), "Question: What is 2+2?\nAnswer:"),
    ("<|user|>Q<|assistant|>", (), "<|user|>Q<|assistant|>"),  # another template: not guessed at
    ("<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nSure", (),  # an assistant prefill: not a prompt end
     "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nSure"),
    ("<|im_start|>user\nQ<|im_end|>\n", (), "<|im_start|>user\nQ<|im_end|>\n"),  # no generation opening
    ("<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n<|im_start|>assistant\n", (),
     "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n<|im_start|>assistant\n"),  # ends on no user
    (TURN.format(role="user", content="Q") + LLAMA_OPEN, (), TURN.format(role="user", content="Q") + LLAMA_OPEN),
])
def test_read_prompt(prompt, history, question):
    assert read_prompt(prompt) == (history, question)


@pytest.mark.parametrize(("response", "clean"), [
    ("4<|im_end|>", "4"),
    ("4<|eot_id|>", "4"),
    ("4</s>", "4"),
    ("4<|endoftext|>", "4"),
    ("The answer is 4.<|im_end|>\n<|endoftext|>", "The answer is 4."),
    ("4<end_of_turn>", "4"),
    ("4", "4"),
    ("4 \n", "4 \n"),  # the response's own whitespace stays
    ("a <|im_end|> b", "a <|im_end|> b"),  # markers inside the text stay: only the end is markup
    ("<|im_end|>", ""),
])
def test_strip_end_of_turn(response, clean):
    assert strip_end_of_turn(response) == clean


def test_a_query_without_its_prompt_is_cut_after_its_last_assistant_header():
    prompt = SYSTEM + "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n"
    assert split_transcript(prompt + "4<|im_end|>") == (prompt, "4<|im_end|>")
    prompt = "<|begin_of_text|>" + TURN.format(role="user", content="Q") + LLAMA_OPEN
    assert split_transcript(prompt + "4<|eot_id|>") == (prompt, "4<|eot_id|>")
    assert split_transcript("Q: what? A: 4") is None


@pytest.fixture(scope="module")
def llama3_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(shared_path("fixtures", "llama3-tokenizer"))


TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="<"), min_size=1, max_size=40)


@pytest.mark.parametrize("name", ["llama3_tokenizer", "tiny_tokenizer"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(system=st.none() | TEXT, turns=st.lists(st.tuples(TEXT, TEXT), max_size=2), question=TEXT)
def test_any_conversation_through_the_chat_template_reads_back(name, request, system, turns, question):
    """What the template wrote is read back: the earlier turns and the question (as the template keeps them:
    Llama 3 trims each message), the system prompt left out."""
    tokenizer = request.getfixturevalue(name)
    keep = str.strip if name == "llama3_tokenizer" else str
    messages = [{"role": "system", "content": system}] if system is not None else []
    for asked, answered in turns:
        messages += [{"role": "user", "content": asked}, {"role": "assistant", "content": answered}]
    messages.append({"role": "user", "content": question})
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    history, read = read_prompt(prompt)
    assert read == keep(question)
    assert history == tuple({"role": m["role"], "content": keep(m["content"])} for m in messages[:-1]
                            if m["role"] != "system")
