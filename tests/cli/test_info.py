"""`critic templates` and `critic prompt`."""

from __future__ import annotations

import pytest

from critic import cli


def test_templates_lists_the_builtins(capsys):
    assert cli.main(["templates"]) == 0
    listed = capsys.readouterr().out
    assert "skywork-critic" in listed and "mt-bench-math" in listed


@pytest.mark.model
def test_prompt_shows_the_chat_formatted_input_ending_in_the_verdict_opening(capsys):
    assert cli.main(["prompt", "--model", "demo", "--prompt", "Q?", "--response-a", "X", "--response-b", "Y"]) == 0
    shown = capsys.readouterr().out
    assert "<|im_start|>user\nPlease act as an impartial judge" in shown
    assert shown.rstrip("\n").endswith("<|im_start|>assistant\n[[")


def test_a_bad_template_is_one_sentence(capsys):
    assert cli.main(["prompt", "--template", "nope", "--prompt", "Q", "--response-a", "X", "--response-b", "Y"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("critic: error:") and "nope" in error and error.count("\n") == 1
