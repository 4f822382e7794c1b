"""critic.hooks: TRL's reward-function and pairwise-judge contracts, and one real GRPO step."""

from __future__ import annotations

import asyncio
import logging
import math
import threading

import pytest

from critic import Judge
from critic.backends.base import BackendOutput
from critic.errors import InputError, ModelError
from critic.integrations.trl import (
    AsyncJudgeReward,
    JudgeReward,
    PairwiseJudgeHook,
    as_conversation,
    completion_text,
)
from critic.testing import FakeBackend, letter_output


def good_judge(p: float = 0.9) -> Judge:
    return Judge(FakeBackend.prefer(lambda text: "good" in text, p=p))


def test_reward_is_the_probability_of_beating_the_reference():
    reward = JudgeReward(good_judge(0.9))
    rewards = reward(["q1", "q2", "q3"], ["a good answer", "meh", "good too"], reference=["meh", "a good one", "good"])
    assert rewards[0] == pytest.approx(0.9)
    assert rewards[1] == pytest.approx(0.1)
    assert rewards[2] == pytest.approx(0.5)  # both good: no preference


def test_reward_reads_conversational_prompts_completions_and_references():
    backend = FakeBackend.prefer(lambda text: "good" in text)
    reward = JudgeReward(Judge(backend), reference_column="chosen")
    prompts = [[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi?"}]]
    completions = [[{"role": "assistant", "content": "good day"}]]  # as GRPOTrainer passes them
    chosen = [[{"role": "user", "content": "hi?"}, {"role": "assistant", "content": "hello"}]]
    assert reward(prompts, completions, chosen=chosen, trainer_state=object()) == [pytest.approx(0.9)]
    shown = backend.calls[0].pair
    assert shown.prompt == "hi?" and shown.history == ({"role": "system", "content": "be brief"},)
    assert (shown.response_a, shown.response_b) == ("good day", "hello")


def test_failed_judgments_stay_failures_unless_a_substitute_is_asked_for():
    def respond(request):
        if "boom" in request.pair.response_a + request.pair.response_b:
            return BackendOutput(error=ModelError("too long"))
        return letter_output(0.7)

    reward = JudgeReward(Judge(FakeBackend(respond)))
    rewards = reward(["q", "q"], ["boom", "fine"], reference=["r", "r"])
    assert rewards[0] is None and rewards[1] == pytest.approx(0.5)
    assert reward.failures == 1
    substitute = JudgeReward(Judge(FakeBackend(respond)), on_failure=0.0)
    assert substitute(["q"], ["boom"], reference=["r"]) == [0.0]


def test_reward_explains_a_missing_reference_column():
    reward = JudgeReward(good_judge())
    with pytest.raises(InputError, match="'reference'.*answer"):
        reward(["q"], ["a"], answer=["x"], trainer_state=None)
    with pytest.raises(InputError, match="one of each"):
        reward(["q", "q"], ["a"], reference=["x"])
    assert reward.__name__ == "critic_judge"


@pytest.mark.parametrize("seed", range(5))
def test_pairwise_judge_returns_the_index_of_the_better_completion(seed):
    hook = PairwiseJudgeHook(Judge(FakeBackend.prefer(lambda t: "good" in t), swap=False), seed=seed)
    prompts = ["q"] * 8
    completions = [["good", "bad"], ["bad", "good"]] * 4
    assert hook.judge(prompts, completions) == [0, 1] * 4  # shuffled internally, mapped back
    assert hook.judge(prompts, completions, shuffle_order=False) == [0, 1] * 4


def test_pairwise_judge_failure_is_minus_one_even_when_shuffled():
    def respond(request):
        return BackendOutput(error=ModelError("no")) if "x" in request.pair.prompt else letter_output(0.9)

    hook = PairwiseJudgeHook(Judge(FakeBackend(respond)), seed=1)
    for _ in range(5):
        assert hook.judge(["x", "x", "y"], [["a", "b"]] * 3)[:2] == [-1, -1]  # never 1 - (-1) = 2, never a choice


def test_pairwise_judge_ties():
    # pure position bias in score mode: the orders disagree, p_a = 0.5 exactly -> no preference
    biased = Judge(FakeBackend.first_position(0.8))
    assert PairwiseJudgeHook(biased).judge(["q"], [["a", "b"]]) == [-1]
    # orders disagree but lean to response_a on average: ties="probability" follows p_a, ties="none" abstains
    lean = Judge(FakeBackend.scripted([0.9, 0.6]))  # ab: A wins 0.9; ba: shown-first (response_b) wins 0.6
    assert PairwiseJudgeHook(lean).judge(["q"], [["a", "b"]], shuffle_order=False) == [0]
    lean = Judge(FakeBackend.scripted([0.9, 0.6]))
    assert PairwiseJudgeHook(lean, ties="none").judge(["q"], [["a", "b"]], shuffle_order=False) == [-1]
    with pytest.raises(InputError):
        PairwiseJudgeHook(biased, ties="coin")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="needs 2"):
        PairwiseJudgeHook(biased).judge(["q"], [["a", "b", "c"]])


@pytest.mark.parametrize("seed", range(5))
def test_pairwise_scores_are_the_probability_that_the_first_completion_is_better(seed):
    # Asymmetric probabilities (0.8 vs 0.2 around the judge's 0.5) show a flip mapped back the wrong way.
    hook = PairwiseJudgeHook(Judge(FakeBackend.prefer(lambda t: "good" in t, p=0.8), swap=False), seed=seed)
    prompts = ["q"] * 6
    completions = [["good", "bad"], ["bad", "good"], ["good", "good too"]] * 2
    expected = [0.8, 0.2, 0.5] * 2
    # TRL's WinRateCallback passes shuffle_order positionally: judge(prompts, completions, shuffle, return_scores=True)
    for scores in (hook.judge(prompts, completions, True, return_scores=True),
                   hook.judge(prompts, completions, shuffle_order=False, return_scores=True)):
        assert scores == pytest.approx(expected)
        assert all(isinstance(score, float) for score in scores)


@pytest.mark.parametrize(
    ("failed_score", "check"),
    [
        (None, lambda score: score == 0.5),  # the default: no preference, inert in NashMD's (p - 0.5) loss
        (math.nan, math.isnan),
        (0.0, lambda score: score == 0.0),
    ],
)
def test_pairwise_score_of_a_failed_pair_is_failed_score_with_a_counted_warning(failed_score, check, caplog):
    def respond(request):
        return BackendOutput(error=ModelError("no")) if "x" in request.pair.prompt else letter_output(0.9)

    options = {} if failed_score is None else {"failed_score": failed_score}
    hook = PairwiseJudgeHook(Judge(FakeBackend(respond)), seed=3, **options)
    with caplog.at_level(logging.WARNING, logger="critic"):
        scores = hook.judge(["x", "y", "x"], [["a", "b"]] * 3, return_scores=True)
    assert check(scores[0]) and check(scores[2])
    assert scores[1] == pytest.approx(0.5)  # judged: the fake's position bias cancels over both orders
    assert hook.failures == 2
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert "2 of 3 pairs" in warning.getMessage()


def test_async_reward_is_a_coroutine_trl_detects_and_gives_the_sync_rewards():
    reward = AsyncJudgeReward(good_judge(0.9), name="critic_async")
    rewards = asyncio.run(reward(["q1", "q2"], ["a good answer", "meh"], reference=["meh", "good"]))
    assert rewards == pytest.approx([0.9, 0.1])
    assert reward.__name__ == "critic_async" and reward.failures == 0
    trl_utils = pytest.importorskip("trl.trainer.utils")
    assert trl_utils.is_async_callable(reward)
    assert not trl_utils.is_async_callable(JudgeReward(good_judge()))


class MeetingBackend(FakeBackend):
    """Judges only when another thread reaches the same barrier: proves two judgments overlap."""

    def __init__(self, barrier: threading.Barrier) -> None:
        super().__init__(lambda request: letter_output(0.7))
        self.barrier = barrier

    def run(self, requests):
        self.barrier.wait()  # BrokenBarrierError unless the other reward is judging at the same time
        return super().run(requests)


@pytest.mark.parametrize(("together", "timeout"), [(True, 10.0), (False, 0.5)])
def test_async_rewards_judge_at_the_same_time(together, timeout):
    """Two async rewards awaited together (as GRPOTrainer does) are both inside their judge at once."""
    barrier = threading.Barrier(2, timeout=timeout)
    rewards = [AsyncJudgeReward(Judge(MeetingBackend(barrier))) for _ in range(2)]

    async def gathered():
        return await asyncio.gather(*(reward(["q"], ["a"], reference=["b"]) for reward in rewards))

    async def in_turn():
        return [await reward(["q"], ["a"], reference=["b"]) for reward in rewards]

    if together:
        assert asyncio.run(gathered()) == [[pytest.approx(0.5)], [pytest.approx(0.5)]]
    else:  # the control: awaited one after the other they never meet, so the check above can fail
        with pytest.raises(threading.BrokenBarrierError):
            asyncio.run(in_turn())


def test_conversation_helpers():
    assert as_conversation("q") == ((), "q")
    with pytest.raises(InputError):
        as_conversation([{"role": "assistant", "content": "x"}])
    agentic = [{"role": "assistant", "content": "call "}, {"role": "tool", "content": "42"},
               {"role": "assistant", "content": "it is 42"}]
    assert completion_text(agentic) == "call it is 42"
    assert completion_text({"role": "assistant", "content": "x"}) == "x"
    with pytest.raises(InputError):
        completion_text([{"role": "user", "content": "x"}])


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_one_grpo_step_with_the_judge_as_reward(tmp_path, kind):
    """TRL's GRPOTrainer calls the reward (plain, or awaited as a coroutine) with conversational completions
    and the reference column."""
    pytest.importorskip("trl")
    datasets = pytest.importorskip("datasets")
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    from trl import GRPOConfig, GRPOTrainer

    words = ["<pad>", "<eos>", "<unk>", "user", "assistant", ":", "what", "is", "two", "plus", "four", "five", "good"]
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")
    tokenizer.chat_template = ("{% for m in messages %}{{ m['role'] }} : {{ m['content'] }} {% endfor %}"
                               "{% if add_generation_prompt %}assistant : {% endif %}")
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(words), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
                         pad_token_id=0, eos_token_id=1, bos_token_id=None)
    policy = LlamaForCausalLM(config)
    dataset = datasets.Dataset.from_list([
        {"prompt": [{"role": "user", "content": "what is two plus two"}], "reference": "four"},
        {"prompt": [{"role": "user", "content": "what is two plus five"}], "reference": "good"},
    ])
    backend = FakeBackend.prefer(lambda text: "good" in text)
    reward = JudgeReward(Judge(backend))
    seen = []

    def recording_reward(prompts, completions, **kwargs):
        seen.append((prompts, completions, kwargs))
        return reward(prompts, completions, **kwargs)

    recording_reward.__name__ = "critic"
    # The async reward goes in as the instance itself: TRL must find the coroutine on its __call__.
    reward_func = recording_reward if kind == "sync" else AsyncJudgeReward(Judge(backend), name="critic")
    args = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=2, num_generations=2,
                      max_completion_length=4, max_steps=1, use_cpu=True, report_to=[], logging_steps=1,
                      save_strategy="no", bf16=False, seed=0)
    trainer = GRPOTrainer(model=policy, reward_funcs=[reward_func], args=args, train_dataset=dataset,
                          processing_class=tokenizer)
    trainer.train()
    assert trainer.state.global_step == 1
    if kind == "sync":
        prompts, completions, kwargs = seen[0]
        assert len(completions) == len(prompts) == len(kwargs["reference"]) == 2
        assert all(isinstance(c, list) and c[0]["role"] == "assistant" for c in completions)
    shown = {text for call in backend.calls for text in (call.pair.response_a, call.pair.response_b)}
    assert shown & {"four", "good"}  # the step's reference column reached the judge
    assert len(backend.calls) == 2 * 2  # both orders of each of the step's 2 completions vs its reference
    logged = next(entry for entry in trainer.state.log_history if "rewards/critic/mean" in entry)
    assert 0.0 <= logged["rewards/critic/mean"] <= 1.0 and not math.isnan(logged["rewards/critic/mean"])
