"""The critic command: output shape, bad lines, errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from critic import Judge, cli

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "pairs.jsonl"


@pytest.fixture
def demo_judge_factory(monkeypatch, demo_backend):
    """Make `critic judge --model demo` reuse the session's demo model instead of loading it again."""

    def from_pretrained(model, **options):
        assert model == "demo"
        keep = {key: options[key] for key in ("template", "mode", "swap", "max_new_tokens")}
        return Judge(demo_backend, model_name=model, **keep)

    monkeypatch.setattr(Judge, "from_pretrained", staticmethod(from_pretrained))


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_judge_writes_one_line_per_input_line(tmp_path, demo_judge_factory, capsys):
    out = tmp_path / "out.jsonl"
    code = cli.main(["judge", str(EXAMPLE), "--model", "demo", "-o", str(out), "--quiet", "--table"])
    assert code == 0
    records = read_jsonl(out)
    inputs = read_jsonl(EXAMPLE)
    assert [r["id"] for r in records] == [row["id"] for row in inputs]
    for record in records:
        assert record["label"] in {"A", "B", "tie"}
        assert 0.0 <= record["p_a"] <= 1.0
        assert isinstance(record["consistent"], bool)
        assert [o["order"] for o in record["orders"]] == ["ab", "ba"]
    table = capsys.readouterr().out
    assert all(row["id"] in table for row in inputs)


def test_bad_lines_get_an_error_record_and_the_rest_are_judged(tmp_path, demo_judge_factory, capsys):
    source = tmp_path / "in.jsonl"
    good = {"prompt": "2+2?", "response_a": "4", "response_b": "5"}
    source.write_bytes(
        b"\n".join(
            [
                json.dumps(good).encode(),
                b"{not json",
                json.dumps({"prompt": "q", "response_a": "a"}).encode(),
                b'{"prompt": "\xff", "response_a": "a", "response_b": "b"}',
                json.dumps({"prompt": "q", "response_a": None, "response_b": "b"}).encode(),
                json.dumps({"question": "q", "first": "a", "second": "b"}).encode(),
            ]
        )
    )
    out = tmp_path / "out.jsonl"
    code = cli.main(["judge", str(source), "--model", "demo", "-o", str(out), "--quiet"])
    assert code == 1
    records = read_jsonl(out)
    assert [r["line"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert "label" in records[0]
    assert "not valid JSON" in records[1]["error"]
    assert "missing field 'response_b'" in records[2]["error"]
    assert "UTF-8" in records[3]["error"]
    assert "null" in records[4]["error"]
    assert "missing field 'prompt'" in records[5]["error"]
    assert "5 line(s) could not be judged" in capsys.readouterr().err


def test_field_flags_rename_input_columns(tmp_path, demo_judge_factory):
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"question": "2+2?", "first": "4", "second": "5"}) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    code = cli.main(["judge", str(source), "--model", "demo", "-o", str(out), "--quiet", "--prompt-field", "question",
                     "--response-a-field", "first", "--response-b-field", "second"])
    assert code == 0 and "label" in read_jsonl(out)[0]


@pytest.fixture
def tiny_model_loader(monkeypatch, tiny_backend):
    """Make the real Judge.from_pretrained build its backend on the tiny model, keeping the options it is given."""
    from critic.backends.transformers import TransformersBackend

    def from_pretrained(model, *, device=None, dtype=None, attn_implementation=None, trust_remote_code=False,
                        **options):
        return TransformersBackend(tiny_backend.model, tiny_backend.tokenizer, **options)

    monkeypatch.setattr(TransformersBackend, "from_pretrained", staticmethod(from_pretrained))


@pytest.mark.parametrize("overflow", [None, "truncate"])
def test_overflow_option_reaches_the_engine(tmp_path, tiny_model_loader, overflow):
    source = tmp_path / "in.jsonl"
    long_pair = {"prompt": "Summarise the story.", "response_a": "Once upon a time " * 80,
                 "response_b": "It was " * 60}
    source.write_text(json.dumps(long_pair) + "\n" + json.dumps({"prompt": "2+2?", "response_a": "4",
                                                                  "response_b": "5"}) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    args = ["judge", str(source), "--model", "demo", "-o", str(out), "--quiet", "--max-length", "300"]
    code = cli.main(args + (["--overflow", overflow] if overflow else []))
    long_record, short_record = read_jsonl(out)
    assert "label" in short_record
    if overflow is None:
        assert code == 1 and "the model reads at most 300" in long_record["error"]
    else:
        assert code == 0 and "label" in long_record


def run_critic(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "critic.cli", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("model", ["/no/such/model-folder", "no-such-org/no-such-model"])
def test_wrong_model_ends_with_one_sentence_not_a_traceback(model):
    result = run_critic("judge", str(EXAMPLE), "--model", model)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("critic: error:") and model in result.stderr and "'demo'" in result.stderr


def test_missing_input_file_is_a_clear_error(tmp_path):
    result = run_critic("judge", str(tmp_path / "absent.jsonl"), "--model", "demo")
    assert result.returncode == 2 and "cannot read input file" in result.stderr and "Traceback" not in result.stderr


def test_templates_lists_the_builtins(capsys):
    assert cli.main(["templates"]) == 0
    listed = capsys.readouterr().out
    assert "skywork-critic" in listed and "mt-bench-math" in listed


def test_prompt_shows_the_chat_formatted_input_ending_in_the_verdict_opening(capsys):
    assert cli.main(["prompt", "--model", "demo", "--prompt", "Q?", "--response-a", "X", "--response-b", "Y"]) == 0
    shown = capsys.readouterr().out
    assert "<|im_start|>user\nPlease act as an impartial judge" in shown
    assert shown.rstrip("\n").endswith("<|im_start|>assistant\n[[")


def test_demo_command_end_to_end(tmp_path):
    """What `make demo` runs, as a real subprocess with a real model load."""
    out = tmp_path / "demo.jsonl"
    result = run_critic("judge", str(EXAMPLE), "--model", "demo", "-o", str(out), "--table")
    assert result.returncode == 0, result.stderr
    assert len(read_jsonl(out)) == len(read_jsonl(EXAMPLE))
    assert "arith" in result.stdout and "consistent" in result.stdout
