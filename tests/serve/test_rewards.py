"""``/get_reward`` as OpenRLHF calls it: its own query construction and client, re-typed, on real tokenizers.

Re-typed from OpenRLHF (github.com/OpenRLHF/OpenRLHF at 3c3be623):
- ``openrlhf/datasets/prompts_dataset.py`` ``preprocess_data``: the prompt is the dataset's conversation through
  the policy's chat template (``apply_chat_template(..., tokenize=False, add_generation_prompt=True)``), the label
  ``data[label_key]``, or ``""`` without ``--label_key``;
- ``openrlhf/utils/agent.py`` ``SingleTurnAgentExecutor.execute``: the query is
  ``tokenizer.decode(prompt ids + the response's ids, skip_special_tokens=False)``, the response's ids as vLLM
  gives them (ending with the end-of-turn id it stopped on), posted as ``{"query": [q], "prompts": [prompt],
  "labels": [label]}`` by ``_fetch_rewards_via_http``'s ``_post_request`` (aiohttp, ``raise_for_status``, 5 tries).

The reward of that query must equal the clean pair's (the user's question, the answer's words, the label).
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from critic import Judge
from critic.serve import ServeSettings, create_app
from critic.types import Pair

from ..conftest import shared_path, uses_demo_model
from .fakes import reward_judge, text_judge
from .support import serving

openrlhf_logger = logging.getLogger("openrlhf.test")

ROWS = [
    {"input": "What is 2+2?", "answer": "2+2 is 4.", "label": "4"},
    {"input": [{"role": "system", "content": "Answer in one word."},
               {"role": "user", "content": "Name a primary colour."}], "answer": "Red", "label": "Blue."},
    {"input": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
               {"role": "user", "content": "What is the capital of France?"}],
     "answer": "The capital of France is Paris.", "label": "Paris."},
]


def preprocess_data(data, input_template=None, input_key="input", label_key=None, apply_chat_template=None):
    """OpenRLHF's ``preprocess_data`` (openrlhf/datasets/prompts_dataset.py), re-typed (text prompts only)."""
    if apply_chat_template:
        chat = data[input_key]
        if isinstance(chat, str):
            chat = [{"role": "user", "content": chat}]
        prompt = apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    else:
        prompt = data[input_key]
        if input_template:
            prompt = input_template.format(prompt)
    label = "" if label_key is None else data[label_key]
    return prompt, label


def openrlhf_query(tokenizer, prompt: str, action_token_ids: list[int]) -> str:
    """``SingleTurnAgentExecutor.execute`` (openrlhf/utils/agent.py), re-typed: the query the reward server gets."""
    prompt_token_ids = tokenizer(text=prompt, add_special_tokens=False, return_tensors="pt")["input_ids"][0].tolist()
    observation_token_ids = prompt_token_ids + action_token_ids
    return tokenizer.decode(observation_token_ids, skip_special_tokens=False)


async def post_request(url, data, try_max_times=5):
    """``_fetch_rewards_via_http``'s ``_post_request`` (openrlhf/utils/agent.py), re-typed; it sleeps 1 s between
    tries, here 0.01 s."""
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=180)
    for _ in range(try_max_times):
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:  # noqa: SIM117 - as OpenRLHF wrote it
                async with session.post(url, json=data) as response:
                    response.raise_for_status()
                    return await response.json()
        except aiohttp.ClientError as e:
            openrlhf_logger.info(f"Request error, please check: {e}")
        await asyncio.sleep(0.01)
    raise RuntimeError(f"Request error for {try_max_times} times, returning None. Please check the API server.")


def policy_rollouts(tokenizer, end_of_turn_id: int, *, label_key="label"):
    """For each row: OpenRLHF's request body, and the clean pair (question, answer, label; earlier turns)."""
    for row in ROWS:
        prompt, label = preprocess_data(row, label_key=label_key, apply_chat_template=tokenizer.apply_chat_template)
        action = tokenizer(row["answer"], add_special_tokens=False)["input_ids"] + [end_of_turn_id]
        query = openrlhf_query(tokenizer, prompt, action)
        messages = [{"role": "user", "content": row["input"]}] if isinstance(row["input"], str) else row["input"]
        history = tuple(message for message in messages[:-1] if message["role"] != "system")
        yield {"query": [query], "prompts": [prompt], "labels": [label]}, Pair(
            messages[-1]["content"], row["answer"], row["label"], history=history)


@pytest.fixture(scope="module")
def llama3_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(shared_path("fixtures", "llama3-tokenizer"))


def test_the_real_llama3_query_is_judged_as_its_clean_pair(llama3_tokenizer):
    eot = llama3_tokenizer.convert_tokens_to_ids("<|eot_id|>")
    rollouts = list(policy_rollouts(llama3_tokenizer, eot))
    assert "<|eot_id|>" in rollouts[0][0]["query"][0] and "<|begin_of_text|>" in rollouts[0][0]["prompts"][0]
    with serving(create_app(text_judge())) as url:
        for body, clean in rollouts:
            answer = asyncio.run(post_request(f"{url}/get_reward", body))
            assert answer["rewards"] == [text_judge().compare_each([clean])[0].p_a] == answer["scores"]
            assert answer["extra_logs"] == {"critic_failed": [0.0]}


def test_a_reward_model_scores_the_clean_conversation(llama3_tokenizer):
    eot = llama3_tokenizer.convert_tokens_to_ids("<|eot_id|>")
    judge = reward_judge()
    with serving(create_app(judge)) as url:
        for body, clean in policy_rollouts(llama3_tokenizer, eot):
            answer = asyncio.run(post_request(f"{url}/get_reward", body))
            expected = judge.scorer.score([(*clean.history, {"role": "user", "content": clean.prompt},
                                            {"role": "assistant", "content": clean.response_a})])[0]
            assert answer["rewards"] == [expected]


def test_without_label_key_openrlhfs_own_log_says_what_to_do(llama3_tokenizer, caplog):
    """OpenRLHF without --label_key sends labels [""]: 422, and its log line (which shows only the status line)
    names the fix; after its tries it gives up as it always does."""
    eot = llama3_tokenizer.convert_tokens_to_ids("<|eot_id|>")
    body, _ = next(policy_rollouts(llama3_tokenizer, eot, label_key=None))
    assert body["labels"] == [""]
    caplog.set_level(logging.INFO, logger="openrlhf.test")
    with serving(create_app(text_judge())) as url, pytest.raises(RuntimeError, match="Request error for 2 times"):
        asyncio.run(post_request(f"{url}/get_reward", body, try_max_times=2))
    logged = [record.getMessage() for record in caplog.records if record.name == "openrlhf.test"]
    assert len(logged) == 2
    assert logged[0].startswith("Request error, please check: 422, message=\"Unprocessable Entity: labels[0]: a "
                                "generative judge turns a response into a reward by comparing it with a reference "
                                "answer in 'labels'; start OpenRLHF with --label_key naming a column of reference "
                                "answers, or serve a reward model (critic serve --kind reward)")


@uses_demo_model
def test_on_the_demo_model_the_reward_of_openrlhfs_query_equals_the_clean_pairs(demo_backend, llama3_tokenizer):
    """The issue measured up to 0.0074 between the two on the demo model before the markup was taken off."""
    judge = Judge(demo_backend, model_name="demo")
    tokenizer = demo_backend.tokenizer
    end_of_turn = tokenizer.convert_tokens_to_ids("<|im_end|>")
    rollouts = list(policy_rollouts(tokenizer, end_of_turn))
    assert "You are a helpful AI assistant named SmolLM" in rollouts[0][0]["prompts"][0]  # its default system prompt
    llama = list(policy_rollouts(llama3_tokenizer, llama3_tokenizer.convert_tokens_to_ids("<|eot_id|>")))
    with serving(create_app(judge, ServeSettings())) as url:
        for (body, clean), (llama_body, _) in zip(rollouts, llama, strict=True):
            expected = judge.compare_each([clean])[0].p_a
            for sent in (body, llama_body):  # a ChatML policy and a Llama 3 policy, the same clean pair
                reward = asyncio.run(post_request(f"{url}/get_reward", sent))["rewards"][0]
                assert reward == pytest.approx(expected, abs=1e-6)
