"""Quickstart: judge pairs, read the result, and test your own code without a model.

    python examples/quickstart.py

Loads the embedded demo model (SmolLM2-135M-Instruct, CPU, offline). It is a
weak judge with a strong first-position bias, so expect ties: real judging uses
the default model, Skywork/Skywork-Critic-Llama-3.1-8B, on a GPU.
"""

from __future__ import annotations

import critic
from critic.integrations.trl import PairwiseJudgeHook
from critic.testing import FakeBackend


def main() -> None:
    judge = critic.Judge.from_pretrained("demo")  # Judge.from_pretrained() loads Skywork-Critic-Llama-3.1-8B

    # One pair: asked in both orders, merged into a label and a debiased probability.
    pref = judge.compare("What is 17 + 25?", "17 + 25 = 42.", "17 + 25 = 32.")
    print(f"label={pref.label} p_a={pref.p_a:.3f} consistent={pref.consistent}")
    for order in pref.orders:
        print(f"  order {order.order}: verdict [[{order.verdict}]] as shown, P(response_a better) = {order.p_a:.3f}")

    # Many pairs: compare_each gives each pair its result, or its error in place.
    pairs = [
        {"prompt": "Capital of France?", "response_a": "Paris.", "response_b": "Lyon."},
        critic.Pair("Boiling point of water at sea level?", "100 °C.", "50 °C."),
    ]
    for result in judge.compare_each(pairs):
        print(result if isinstance(result, critic.CriticError) else f"{result.label} {result.p_a:.3f}")

    # Testing your pipeline without a model: a fake backend with the verdicts you script.
    fake = critic.Judge(FakeBackend.prefer(lambda answer: "42" in answer))
    assert fake.compare("What is 17 + 25?", "42", "32").label == "A"

    # TRL's pairwise-judge contract: index of the better completion, -1 when there is none.
    print(PairwiseJudgeHook(fake).judge(["What is 17 + 25?"], [["32", "42"]]))  # [1]


if __name__ == "__main__":
    main()
