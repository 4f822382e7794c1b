"""`critic score` end to end on a tiny random reward model saved like a real one (real mechanics, meaningless numbers).

These belong in tests/cli/test_score.py; they stay here until the CLI's owner moves them.
"""

from __future__ import annotations

import json

import pytest

from critic import RewardJudge, cli
from critic.options import LoadOptions
from critic.testing import tiny_reward_model


@pytest.fixture(scope="module")
def tiny_model_folder(tmp_path_factory, demo_backend):
    """A tiny random reward model with the demo tokenizer, saved like a real one: meaningless scores."""
    folder = tmp_path_factory.mktemp("tiny-reward-model")
    tiny_reward_model(demo_backend.tokenizer).save_pretrained(folder)
    demo_backend.tokenizer.save_pretrained(folder)
    return folder


def test_score_command_adds_a_reward_column(tmp_path, tiny_model_folder, capsys):
    messages = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
    rows = [
        {"id": "m", "messages": messages},
        {"id": "p", "prompt": "2+2?", "response": "4", "extra": [1, 2]},
        {"id": "h", "prompt": "And 3+3?", "response": "6", "history": messages},
        {"id": "bad", "prompt": "2+2?"},
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(json.dumps(row) for row in rows) + "\n{not json\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    options = ["-o", str(out), "--model", str(tiny_model_folder), "--device", "cpu", "--quiet"]
    code = cli.main(["score", str(source), *options])
    assert code == 1
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r.get("id") for r in records] == ["m", "p", "h", "bad", None]
    assert {k: v for k, v in records[1].items() if k != "reward"} == rows[1]  # the row comes back whole
    assert all(isinstance(r["reward"], float) for r in records[:3])
    assert records[0]["reward"] == pytest.approx(records[1]["reward"], abs=1e-5)  # the same conversation
    assert records[3]["reward"] is None and "line 4:" in records[3]["error"] and "'response'" in records[3]["error"]
    assert records[4] == {"line": 5, "reward": None, "error": records[4]["error"]}
    assert records[4]["error"].startswith("line 5 is not valid JSON")
    assert "2 line(s) could not be scored" in capsys.readouterr().err

    expected = RewardJudge.from_pretrained(str(tiny_model_folder), load=LoadOptions(device="cpu")).score([messages])[0]
    assert records[0]["reward"] == pytest.approx(expected, abs=1e-5)


def test_score_command_with_the_demo_model_explains_why_not(tmp_path, capsys):
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"prompt": "q", "response": "a"}) + "\n", encoding="utf-8")
    assert cli.main(["score", str(source), "--model", "demo"]) == 2
    assert "no reward model ships offline" in capsys.readouterr().err
