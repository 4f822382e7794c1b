"""Every example of the README and docs/ runs, and prints what the page shows under it.

See tests/docs/examples.py for how a page marks its examples, and
tests/docs/runner.py for how they run and how output is compared. An example
marked ``<!-- example: skip=REASON -->`` is parsed here instead: Python
compiles and the critic names and keyword arguments it uses exist; each
``critic`` command parses; each ``make`` target exists.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from .examples import SKIP_REASONS, Example, all_examples, documents, examples, relative
from .references import command_problem, critic_command_lines, prose_problems, python_problems, shell_words
from .runner import SHARED, Page, make_targets, shell_commands

EXAMPLES = all_examples()


def _marks(example: Example) -> list[pytest.MarkDecorator]:
    """A page's examples run in order, so an example after one that loads the demo model is a model test too."""
    page = examples(example.block.path)[: example.index + 1]
    if any(earlier.mentions_demo_model() and not earlier.skip for earlier in page):
        return [pytest.mark.model]
    return []


RUNNABLE = [pytest.param(example, id=example.id, marks=_marks(example)) for example in EXAMPLES if not example.skip]
EVERY = [pytest.param(example, id=example.id) for example in EXAMPLES]


@pytest.fixture(scope="module")
def pages() -> dict[Path, Page]:
    return {}


@pytest.mark.parametrize("example", RUNNABLE)
def test_example_runs_and_prints_what_the_page_shows(example: Example, pages, models_loaded_once, tmp_path_factory,
                                                     request):
    if request.node.get_closest_marker("model"):  # the suite's demo model, loaded once per session, is the docs' too
        demo = request.getfixturevalue("demo_backend")
        models_loaded_once.seed("demo", demo.model, demo.tokenizer)
    if "../shared" in example.block.source and not SHARED.exists():
        pytest.skip(f"../shared is absent ({SHARED} not found): this example reads the team's shared material")
    path = example.block.path
    if path not in pages:
        pages[path] = Page.create(tmp_path_factory.mktemp(path.stem))
    pages[path].run(example, examples(path)[: example.index])


@pytest.mark.parametrize("example", EVERY)
def test_example_names_only_what_exists(example: Example):
    """Run or not, an example's critic commands parse and its critic names and keyword arguments exist."""
    source = example.block.source
    if example.kind == "python":
        assert python_problems(source) == [], example.id
        return
    for argv in critic_command_lines(source):
        if example.kind == "console" and _shows_its_usage_error(example, argv):
            continue  # a page showing what a mistyped command says: running it compares that message
        assert command_problem(argv) is None, f"{example.id}: critic {' '.join(argv)}: {command_problem(argv)}"
    for target in _make_targets_named(source):
        assert target in make_targets(), f"{example.id}: the Makefile has no target '{target}'"


def _shows_its_usage_error(example: Example, argv: list[str]) -> bool:
    """Whether a console block shows ``critic ARGV`` answering with argparse's usage error (and its exit 2)."""
    for command in shell_commands(example):
        words = shlex.split(command.text, comments=True)
        if words[1:] == argv and command.expected is not None:
            return command.expected.startswith(f"critic {argv[0]}: error: argument ") and "[exit 2]" in command.expected
    return False


def _make_targets_named(source: str) -> list[str]:
    targets = []
    for words in shell_words(source):
        if words[:1] == ["make"]:
            targets += [word for word in words[1:] if "=" not in word and not word.startswith("-")]
    return targets


def test_every_skip_says_a_known_reason():
    for example in EXAMPLES:
        assert example.skip is None or example.skip in SKIP_REASONS, example.id


def test_there_are_examples_to_run():
    assert RUNNABLE, "no runnable examples found: is the docs/ folder there?"
    assert {relative(example.block.path) for example in EXAMPLES}


@pytest.mark.parametrize("path", documents(), ids=relative)
def test_prose_names_only_what_exists(path: Path):
    """Inline code in the prose: each --flag belongs to a critic command, each critic.x name resolves."""
    assert prose_problems(path.read_text(encoding="utf-8")) == []
