"""The Skywork-Reward model card's example, through critic's reward judge.

Needs the weights of Skywork/Skywork-Reward-Llama-3.1-8B-v0.2 (about 16 GB in
bf16; a GPU is strongly advised, flash-attn optional) from the hub or a local
folder::

    python examples/skywork_reward.py
    python examples/skywork_reward.py --model /models/Skywork-Reward-Gemma-2-27B-v0.2

The seed card reports 12.625 for the correct answer and -15.25 for the wrong
one (bf16); other revisions of the card, tokenising differently, report other
numbers (13.6875 and -9.1875). What must hold is the sign and a wide margin.
critic tokenises as the seed card does, with exactly one BOS.

``--tiny`` runs the same code on a tiny randomly initialised reward model with
the demo tokenizer, to show the mechanics offline: its scores are MEANINGLESS.
"""

from __future__ import annotations

import argparse
import sys

from critic import DEFAULT_REWARD_MODEL, CriticError, RewardJudge
from critic.options import LoadOptions

PROMPT = (
    "Jane has 12 apples. She gives 4 apples to her friend Mark, then buys 1 more apple, and finally splits all "
    "her apples equally among herself and her 2 siblings. How many apples does each person get?"
)
RESPONSE_1 = (  # right: 9 apples shared by 3 people
    "1. Jane starts with 12 apples and gives 4 to Mark. 12 - 4 = 8. Jane now has 8 apples.\n"
    "2. Jane buys 1 more apple. 8 + 1 = 9. Jane now has 9 apples.\n"
    "3. Jane splits the 9 apples equally among herself and her 2 siblings (3 people in total). "
    "9 ÷ 3 = 3 apples each. Each person gets 3 apples."
)
RESPONSE_2 = (  # wrong: forgets Jane herself
    "1. Jane starts with 12 apples and gives 4 to Mark. 12 - 4 = 8. Jane now has 8 apples.\n"
    "2. Jane buys 1 more apple. 8 + 1 = 9. Jane now has 9 apples.\n"
    "3. Jane splits the 9 apples equally among her 2 siblings (2 people in total). "
    "9 ÷ 2 = 4.5 apples each. Each person gets 4 apples."
)


def tiny_judge() -> RewardJudge:
    from critic.backends.loading import load_tokenizer, resolve_model
    from critic.backends.reward import TransformersRewardScorer
    from critic.testing import tiny_reward_model

    tokenizer = load_tokenizer(resolve_model("demo"))
    return RewardJudge(TransformersRewardScorer(tiny_reward_model(tokenizer), tokenizer), model_name="tiny-random")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_REWARD_MODEL, help="reward model: hub id or local folder")
    parser.add_argument("--device", help="cuda, cpu, ... (default: cuda when available)")
    parser.add_argument("--tiny", action="store_true",
                        help="a tiny random model instead: mechanics only, meaningless scores")
    args = parser.parse_args()
    try:
        load = LoadOptions(device=args.device)
        judge = tiny_judge() if args.tiny else RewardJudge.from_pretrained(args.model, load=load)
    except CriticError as error:
        print(f"could not load the reward model: {error}", file=sys.stderr)
        return 2

    conversations = [
        [{"role": "user", "content": PROMPT}, {"role": "assistant", "content": response}]
        for response in (RESPONSE_1, RESPONSE_2)
    ]
    score_1, score_2 = judge.score(conversations)
    if args.tiny:
        print("(tiny random model: these numbers are MEANINGLESS, they only show the mechanics)")
    print(f"Score for response 1: {score_1}")
    print(f"Score for response 2: {score_2}")

    preference = judge.compare(PROMPT, RESPONSE_1, RESPONSE_2)
    preferred = {"A": "response 1", "B": "response 2", "tie": "neither (a tie)"}[preference.label]
    print(f"Preferred: {preferred}; P(response 1 better) = sigmoid(margin) = {preference.p_a:.4f}")
    if not args.tiny:
        print("The seed card reports 12.625 and -15.25 for Skywork-Reward-Llama-3.1-8B-v0.2 in bf16.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
