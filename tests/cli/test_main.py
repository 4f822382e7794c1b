"""The entry point: --version, -v on either side of the command, exit codes, one-sentence errors."""

from __future__ import annotations

import pytest

import critic
from critic import cli
from critic.cli.main import parser

from .conftest import EXAMPLE, run_critic


def test_version(capsys):
    assert cli.main(["--version"]) == 0 and capsys.readouterr().out == f"critic {critic.__version__}\n"


@pytest.mark.parametrize("argv, verbose", [
    (["judge", "x.jsonl"], False),
    (["-v", "judge", "x.jsonl"], True),
    (["judge", "x.jsonl", "-v"], True),
    (["judge", "-v", "x.jsonl"], True),
    (["filter", "x.jsonl", "-o", "out", "--verbose"], True),
])
def test_verbose_before_or_after_the_command(argv, verbose):
    assert parser().parse_args(argv).verbose is verbose


@pytest.mark.parametrize("command", [[], ["judge"], ["filter"], ["eval"], ["score"], ["prompt"], ["templates"]])
def test_help_is_readable(capsys, command):
    assert cli.main([*command, "--help"]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith("usage: critic") and max(len(line) for line in shown.splitlines()) <= 120


@pytest.mark.parametrize("flags, message", [
    (["--device", "tpu"], "unknown device 'tpu'"),
    (["--device", "cuda"], "device 'cuda' is not available on this machine"),
    (["--dtype", "fp8"], "unknown dtype 'fp8'"),
    (["--template", "no-such-template"], "no-such-template"),
])
def test_bad_option_values_are_one_sentence_before_loading(loaders, capsys, flags, message):
    import torch

    if flags == ["--device", "cuda"] and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert cli.main(["judge", str(EXAMPLE), "--model", "demo", *flags]) == 2
    error = capsys.readouterr().err
    assert error.startswith("critic: error:") and message in error and error.count("\n") == 1
    assert loaders["generative"].calls == []


@pytest.mark.parametrize("command", ["judge", "score", "filter", "eval"])
@pytest.mark.parametrize("flag", ["--batch-size", "--max-batch-tokens", "--max-length"])
def test_sizes_below_one_are_usage_errors(tmp_path, loaders, capsys, command, flag):
    argv = [command, str(EXAMPLE), flag, "0"] + (["-o", str(tmp_path / "out")] if command in {"filter", "eval"} else [])
    assert cli.main(argv) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert f"argument {flag}: must be at least 1, got 0" in error and "Traceback" not in error
    assert loaders["generative"].calls == loaders["reward"].calls == []


@pytest.mark.slow
def test_device_errors_in_a_real_process_have_no_traceback():
    for device, message in (("tpu", "unknown device 'tpu'"), ("cuda", "not available")):
        result = run_critic("judge", str(EXAMPLE), "--model", "demo", "--device", device, timeout=120)
        if device == "cuda" and result.returncode == 0:
            continue  # a machine with CUDA
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
        assert result.stderr.count("\n") == 1 and "loading" not in result.stderr


def test_an_internal_crash_has_its_own_exit_code_and_one_line(monkeypatch, capsys):
    from critic.cli import judge

    def crash(*args):
        raise RuntimeError("something broke")

    monkeypatch.setattr(judge, "start_file_command", crash)
    assert cli.main(["judge", str(EXAMPLE)]) == 70
    error = capsys.readouterr().err
    assert error.startswith("critic: internal error: RuntimeError: something broke\n")
    assert "-v" in error and "Traceback" not in error
    assert cli.main(["judge", str(EXAMPLE), "-v"]) == 70
    error = capsys.readouterr().err
    assert "Traceback" in error and "critic: internal error: RuntimeError: something broke" in error


def test_a_usage_error_is_one_line_with_where_to_look(capsys):
    assert cli.main(["judge", str(EXAMPLE), "--mode", "loud"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert error.startswith("critic judge: error: argument --mode") and "critic judge --help" in error


@pytest.mark.parametrize("command", ["judge", "score", "filter", "eval"])
@pytest.mark.parametrize("model", ["./missing", "/no/such/folder", "missing.gguf"])
def test_a_model_folder_or_file_that_is_not_there_is_said_before_the_loading_line(tmp_path, loaders, capsys,
                                                                                   command, model):
    source = tmp_path / "in.jsonl"
    source.write_text('{"prompt": "q", "chosen": "a", "rejected": "b", "response": "a"}\n', encoding="utf-8")
    output = tmp_path / ("out" if command in {"filter", "eval"} else "out.jsonl")
    extra = ["--no-figure"] if command == "eval" else []
    assert cli.main([command, str(source), "--model", model, "-o", str(output), *extra]) == 2
    error = capsys.readouterr().err
    said = error.splitlines()
    assert not any(line.startswith("critic: loading") for line in said)
    assert said[-1].startswith("critic: error: model ") and "does not exist" in said[-1]
    assert loaders["generative"].calls == loaders["reward"].calls == []
