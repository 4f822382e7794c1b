"""The docs checks themselves: output matching, the example markers, and the reference checks catch what they must."""

from __future__ import annotations

import pytest

from .examples import blocks, examples
from .references import command_problem, prose_problems, python_problems
from .runner import Command, _expand, matches, run_critic, shell_commands


@pytest.mark.parametrize(
    ("shown", "printed", "same"),
    [
        ("tie 0.504 False", "tie 0.504 False\n", True),
        ("tie 0.504 False", "tie 0.5035482 False", True),  # to the shown precision
        ("tie 0.504 False", "tie 0.505 False", True),  # one unit in the last shown place
        ("tie 0.504 False", "tie 0.507 False", False),
        ("rows in 4", "rows in 5", False),  # whole numbers exactly
        ("p 0.5", "p 0.45", True),
        ("a\n...\nz", "a\nb\nc\nz", True),  # a line of ... stands for any lines
        ("a\n...\nz", "a\nz", True),
        ("time        ...", "time        47.2 s, 0.08 pairs/s", True),  # ... inside a line: any text
        ('"p_a": 0.504..., "x": 1', '"p_a": 0.5035482466992234, "x": 1', True),
        ("a\nb", "a\nb\nc", False),  # nothing printed is left unchecked
        ("trailing   ", "trailing", True),
        ("gpt-3.5-turbo 79.0%", "gpt-3.5-turbo 79.0%", True),
        ("[[A]] 0.811", "[[B]] 0.811", False),
    ],
)
def test_output_matching(shown, printed, same):
    assert matches(shown, printed) is same


def test_an_output_block_belongs_to_the_python_block_above_it(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("Text\n\n```python\nprint(1)\n```\n\n```output\n1\n```\n\n<!-- example: skip=gpu -->\n"
                    "```bash\ncritic judge x.jsonl --device cuda\n```\n\n```json\n{}\n```\n", encoding="utf-8")
    found = examples(page)
    assert [(example.kind, example.expected, example.skip) for example in found] == [
        ("python", "1\n", None), ("shell", None, "gpu")]
    assert [block.language for block in blocks(page)] == ["python", "output", "bash", "json"]


@pytest.mark.parametrize(
    ("comment", "said"),
    [("<!-- example: skip=cuda -->", "unknown skip reason 'cuda'"),
     ("<!-- example: run=never -->", "unknown example option")],
)
def test_a_marker_with_a_typo_fails(tmp_path, comment, said):
    page = tmp_path / "page.md"
    page.write_text(f"{comment}\n```bash\ncritic templates\n```\n", encoding="utf-8")
    with pytest.raises(ValueError, match=said):
        examples(page)


def test_an_output_block_without_python_above_fails(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```bash\ncritic templates\n```\n\n```output\nx\n```\n", encoding="utf-8")
    with pytest.raises(ValueError, match="must follow a python block"):
        examples(page)


@pytest.mark.parametrize(
    ("argv", "bad"),
    [
        (["judge", "x.jsonl", "--model", "demo"], False),
        (["judge", "x.jsonl", "--label-field", "c"], True),  # judge reads no label, so it has no --label-field
        (["judge", "x.jsonl", "--chosen-field", "c"], False),  # it reads chosen/rejected rows, so it names them
        (["judge", "x.jsonl", "--mode", "sample"], True),
        (["arena-of-doom"], True),
        (["templates"], False),
    ],
)
def test_documented_commands_must_parse(argv, bad):
    assert (command_problem(argv) is not None) is bad


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("import critic\ncritic.Judge.from_pretrained('demo', load=critic.LoadOptions(device='cpu'))", None),
        ("import critic\ncritic.LoadOptions(gpu=True)", "unexpected keyword argument 'gpu'"),
        ("import critic\ncritic.evaluate_everything()", "critic has no 'evaluate_everything'"),
        ("from critic.testing import FakeJudge", "critic.testing has no 'FakeJudge'"),
        ("from critic.testing import FakeBackend\nFakeBackend.scripted([0.9], loop=True)", "unexpected keyword"),
        ("import critic\nprint(", "does not compile"),
    ],
)
def test_python_names_and_keywords_must_exist(source, problem):
    found = python_problems(source)
    if problem is None:
        assert found == []
    else:
        assert any(problem in line for line in found), found


@pytest.mark.parametrize(
    ("prose", "problem"),
    [
        ("Use `--max-batch-tokens` to cap a batch.", None),
        ("Use `--turbo` to go faster.", "no critic command has the flag --turbo"),
        ("`critic judge x.jsonl --no-swap` judges one order.", None),
        ("`critic judge x.jsonl --relabel` relabels.", "unrecognized arguments: --relabel"),
        ("`critic judge x.jsonl --turbo` is fast.", "no critic command has the flag --turbo"),
        ("`python benchmarks/throughput.py --gpu-8b-shape` on a GPU.", None),  # another tool's flags
        ("`critic.render_prompt` shows it.", None),
        ("`critic.render_promptly` shows it.", "has no 'render_promptly'"),
        ("```bash\ncritic judge --turbo\n```\n", None),  # blocks are the examples' business, not the prose's
    ],
)
def test_prose_names_must_exist(prose, problem):
    found = prose_problems(prose)
    if problem is None:
        assert found == []
    else:
        assert any(problem in line for line in found), found


def test_a_command_that_fails_ends_with_its_exit_status(tmp_path, monkeypatch):
    """So a page shows, and the suite checks, the status a documented command exits with."""
    monkeypatch.chdir(tmp_path)
    printed = run_critic(["judge", "nowhere.jsonl", "--backend", "fake", "--model", "dry-run"], {})
    assert printed.splitlines()[-1] == "[exit 2]"
    assert "nowhere.jsonl" in printed
    (tmp_path / "one.jsonl").write_text('{"prompt": "q", "response_a": "a", "response_b": "bb"}\n')
    done = run_critic(["judge", "one.jsonl", "--backend", "fake", "--model", "dry-run", "--quiet"], {})
    assert "[exit" not in done and '"label": "B"' in done


def test_wildcards_expand_as_a_shell_expands_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("b.jsonl", "a.jsonl", "c.txt"):
        (tmp_path / name).write_text("")
    assert _expand("*.jsonl") == ["a.jsonl", "b.jsonl"]
    assert _expand("none-*.jsonl") == ["none-*.jsonl"]  # left as typed, as bash leaves it
    assert _expand("plain.jsonl") == ["plain.jsonl"]


def test_a_console_block_keeps_each_commands_shown_output(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```console\n$ critic templates --bogus\ncritic templates: error: argument ...\n[exit 2]\n"
                    "$ critic templates\n...\n```\n", encoding="utf-8")
    (example,) = examples(page)
    assert shell_commands(example) == [
        Command(2, "critic templates --bogus", "critic templates: error: argument ...\n[exit 2]"),
        Command(5, "critic templates", "..."),
    ]
