"""critic's verl reward, called by verl's own code: its RewardLoopWorker, its NaiveRouter, its batch manager.

verl 0.9.1 is installed without its dependencies (``pip install --no-deps verl``
plus tensordict 0.10, omegaconf, codetiming, pyvers, orjson): its reward loop then
imports and runs on the CPU, without Ray actors or a GPU. verl's router forwards to
the real ``vllm serve`` of the demo model (``vllm_demo_server``); the expected
scores come from critic's transformers backend on the same pairs.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from critic.errors import InputError
from critic.integrations.verl import VerlSettings, compute_score, compute_score_batch
from tests.conftest import pandalm_pairs
from tests.serve.support import serving

pytest.importorskip("verl", reason="verl is not installed (pip install --no-deps verl; see docs/notes/verl.md)")
torch = pytest.importorskip("torch")

TOLERANCE = 1e-4
KEYS = {"score", "critic_p_a", "critic_label", "critic_consistent", "critic_failed", "critic_error"}


@pytest.fixture(scope="module")
def router(vllm_demo_server):
    """verl's own NaiveRouter in front of the vLLM server; its address as verl hands it over (host:port)."""
    from verl.experimental.reward_loop.router.naive_router import NaiveRouter

    with serving(NaiveRouter(worker_urls=[vllm_demo_server.base_url]).app) as url:
        yield url.removeprefix("http://")


def verl_config(folder: str, **reward_kwargs):
    from omegaconf import OmegaConf

    return OmegaConf.create({
        "actor_rollout_ref": {"model": {"path": folder, "tokenizer_path": None}},
        "reward": {
            "num_workers": 1,
            "reward_manager": {"name": "naive", "source": "register"},
            "reward_model": {"enable": True, "model_path": folder, "rollout": {"name": "vllm"}},
            "custom_reward_function": {"path": "pkg://critic.integrations.verl", "name": "compute_score",
                                       "reward_kwargs": reward_kwargs},
        },
    })


def rollout_batch(tokenizer, rows):
    """A verl DataProto of rollouts: (question, response text, ground truth), laid out as verl's agent loop does."""
    from verl import DataProto

    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                             tokenize=True, return_dict=True)["input_ids"] for q, _, _ in rows]
    responses = [tokenizer(text, add_special_tokens=False)["input_ids"] for _, text, _ in rows]
    width_p, width_r = max(map(len, prompts)), max(map(len, responses))
    pad = tokenizer.pad_token_id
    prompt_ids = torch.tensor([[pad] * (width_p - len(p)) + p for p in prompts])
    response_ids = torch.tensor([r + [pad] * (width_r - len(r)) for r in responses])
    mask = torch.tensor([[0] * (width_p - len(p)) + [1] * len(p) + [1] * len(r) + [0] * (width_r - len(r))
                         for p, r in zip(prompts, responses, strict=True)])
    extra = [{"question": q} if q else {"index": n} for n, (q, _, _) in enumerate(rows)]
    return DataProto.from_dict(
        tensors={"prompts": prompt_ids, "responses": response_ids, "attention_mask": mask,
                 "input_ids": torch.cat([prompt_ids, response_ids], dim=1)},
        non_tensors={"data_source": np.array(["pandalm"] * len(rows), dtype=object),
                     "reward_model": np.array([{"ground_truth": g, "style": "model"} for _, _, g in rows],
                                              dtype=object),
                     "extra_info": np.array(extra, dtype=object)})


@pytest.fixture(scope="module")
def rows():
    first, second = pandalm_pairs(2)
    return [(first.prompt, first.response_a, first.response_b),   # rollout against the reference
            (second.prompt, second.response_b, second.response_a),
            ("", "an answer", "a reference")]                        # no question in extra_info: fails alone


@pytest.fixture(scope="module")
def expected(demo_backend, demo_folder, rows):
    """What critic's transformers backend says for the texts verl hands over (decoded from the rollout ids)."""
    from transformers import AutoTokenizer

    from critic import Judge

    tokenizer = AutoTokenizer.from_pretrained(demo_folder)
    decoded = [tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"], skip_special_tokens=True)
               for _, text, _ in rows[:2]]
    judge = Judge(demo_backend)
    return [judge.compare(question, answer, reference).p_a
            for (question, _, reference), answer in zip(rows[:2], decoded, strict=True)]


def test_verls_reward_loop_worker_calls_compute_score_through_its_router(router, demo_folder, rows, expected):
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    async def run():
        worker = RewardLoopWorker(verl_config(demo_folder, critic_prompt_field="question"), router)
        return await worker.compute_score_batch(rollout_batch(worker.input_tokenizer, rows))

    outputs = asyncio.run(run())
    scores = [output["reward_score"] for output in outputs]
    infos = [output["reward_extra_info"] for output in outputs]
    assert scores[:2] == pytest.approx(expected, abs=TOLERANCE)
    assert all(set(info) == KEYS for info in infos)  # verl builds its arrays from the first rollout's keys
    assert [info["critic_failed"] for info in infos] == [0.0, 0.0, 1.0] and scores[2] == 0.0
    assert "extra_info has no question in 'question'" in infos[2]["critic_error"]
    assert all(info["critic_label"] in ("A", "B", "tie") for info in infos[:2])
    # What RewardLoopManager.compute_rm_score does with them:
    arrays = {key: np.array([info[key] for info in infos]) for key in infos[0]}
    assert arrays["critic_failed"].tolist() == [0.0, 0.0, 1.0]


def test_verls_batch_reward_manager_calls_the_batch_form(vllm_demo_server, demo_folder, rows, expected):
    from functools import partial

    from transformers import AutoTokenizer
    from verl.workers.reward_manager.batch import BatchRewardManager

    tokenizer = AutoTokenizer.from_pretrained(demo_folder)
    data = rollout_batch(tokenizer, rows)
    manager = BatchRewardManager(tokenizer, num_examine=0, compute_score=partial(compute_score_batch),
                                 critic_base_url=vllm_demo_server.base_url, critic_tokenizer=demo_folder)
    result = manager(data, return_dict=True)
    lengths = data.batch["attention_mask"][:, data.batch["prompts"].shape[1]:].sum(dim=1)
    scores = [float(result["reward_tensor"][i, lengths[i] - 1]) for i in range(len(rows))]
    assert scores[:2] == pytest.approx(expected, abs=TOLERANCE)
    assert result["reward_extra_info"]["critic_failed"] == [0.0, 0.0, 1.0]


def test_compute_score_reads_the_reference_from_extra_info_when_told(router, demo_folder, rows, expected):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(demo_folder)
    question, answer, reference = rows[0]
    answer = tokenizer.decode(tokenizer(answer, add_special_tokens=False)["input_ids"], skip_special_tokens=True)
    result = asyncio.run(compute_score(
        data_source="pandalm", solution_str=answer, ground_truth="ignored",
        extra_info={"question": question, "gold": reference}, reward_router_address=router,
        reward_model_tokenizer=tokenizer, critic_reference_field="gold"))
    assert result["score"] == pytest.approx(expected[0], abs=TOLERANCE) and result["critic_failed"] == 0.0


def test_settings_are_checked():
    with pytest.raises(InputError, match="unknown reward_kwargs critic_templat "):
        VerlSettings.from_kwargs({"critic_templat": "x"})
    with pytest.raises(InputError, match="critic_failed_score must be a finite number"):
        VerlSettings.from_kwargs({"critic_failed_score": float("nan")})
    with pytest.raises(InputError, match="set critic_base_url"):
        asyncio.run(compute_score("d", "answer", "reference", {"question": "q"}))
