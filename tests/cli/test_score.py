"""`critic score`: the io layer's formats and field flags, outputs checked before the reward model loads."""

from __future__ import annotations

import json

from critic import RewardJudge, cli
from critic.testing import FakeScorer

from .conftest import read_jsonl


def test_score_reads_a_json_array_with_renamed_fields(tmp_path, monkeypatch, capsys):
    judge = RewardJudge(FakeScorer.by_response({"4": 2.0, "5": -1.0}), model_name="rm")
    monkeypatch.setattr(RewardJudge, "from_pretrained", staticmethod(lambda model, **options: judge))
    source = tmp_path / "rows.json"
    source.write_text(json.dumps([{"q": "2+2?", "a": "4"}, {"q": "2+2?", "a": "5"}, {"q": "2+2?"}]), encoding="utf-8")
    out = tmp_path / "scored.jsonl"
    code = cli.main(["score", str(source), "--model", "rm", "-o", str(out), "--prompt-field", "q",
                     "--response-field", "a", "--score-field", "s"])
    assert code == 1
    records = read_jsonl(out)
    assert [r["s"] for r in records] == [2.0, -1.0, None] and "a" in records[2]["error"]
    err = capsys.readouterr().err
    assert err.startswith("critic: loading rm (reward, transformers backend) ...\n")
    assert "1 line(s) could not be scored" in err


def test_an_existing_output_needs_force(tmp_path, loaders, capsys):
    source = tmp_path / "rows.jsonl"
    source.write_text('{"prompt": "q", "response": "a"}\n', encoding="utf-8")
    out = tmp_path / "scored.jsonl"
    out.write_text("", encoding="utf-8")
    assert cli.main(["score", str(source), "-o", str(out)]) == 2
    assert "already exists; use --force" in capsys.readouterr().err and loaders["reward"].calls == []
