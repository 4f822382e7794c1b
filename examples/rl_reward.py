"""A judge as the reward in TRL's GRPO: one training step on CPU.

    pip install 'critic[trl]'
    python examples/rl_reward.py

The reward of a completion is the judge's probability that it beats the
reference answer in the dataset's ``reference`` column (GRPOTrainer passes
extra dataset columns to reward functions as keyword arguments). The judge is
the demo model; the policy is a tiny random Llama sharing its tokenizer, a
stand-in for yours, so its completions are noise.
"""

from __future__ import annotations

import copy
import tempfile

import torch
from datasets import Dataset
from transformers import LlamaConfig, LlamaForCausalLM
from trl import GRPOConfig, GRPOTrainer

from critic import Judge
from critic.integrations.trl import JudgeReward


def main() -> None:
    judge = Judge.from_pretrained("demo")
    reward = JudgeReward(judge, reference_column="reference")  # a failed judgment gives None (NaN in TRL), not 0.5

    tokenizer = copy.deepcopy(judge.backend.tokenizer)  # the trainer may change padding; keep the judge's intact
    torch.manual_seed(0)
    policy = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    ))
    dataset = Dataset.from_list([
        {"prompt": [{"role": "user", "content": "What is 17 + 25?"}], "reference": "17 + 25 = 42."},
        {"prompt": [{"role": "user", "content": "Name the capital of France."}], "reference": "Paris."},
    ])
    with tempfile.TemporaryDirectory() as output_dir:
        args = GRPOConfig(output_dir=output_dir, per_device_train_batch_size=2, num_generations=2,
                          max_completion_length=8, max_steps=1, use_cpu=True, report_to=[], logging_steps=1,
                          save_strategy="no", bf16=False, seed=0)
        trainer = GRPOTrainer(model=policy, reward_funcs=[reward], args=args, train_dataset=dataset,
                              processing_class=tokenizer)
        trainer.train()
    logged = next(entry for entry in trainer.state.log_history if "reward" in entry)
    print(f"one GRPO step done: mean reward {logged['reward']:.3f} (P(completion beats the reference)), "
          f"{reward.failures} failed judgment(s)")


if __name__ == "__main__":
    main()
