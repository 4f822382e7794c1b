"""The examples of the documentation: every fenced code block of the README and docs/, read once.

A block is an *example* when its language is Python (``python``, ``py``) or a
shell (``bash``, ``sh``, ``shell``, ``console``). Other blocks (``json``,
``jinja``, ``text``, ``output``, ...) are data and are not run.

- A ``python`` block runs; when an ``output`` block follows it (nothing but
  blank lines between), what the block prints must match that output.
  The Python blocks of one page share one namespace, in page order.
- A ``console`` block holds ``$ command`` lines, each followed by the output it
  prints (stdout and stderr together, as a terminal shows them), compared.
- A ``bash`` block holds commands without output; each runs.

An example that cannot run in the test suite says why in an HTML comment on
the line before its fence (invisible on GitHub and on the site)::

    <!-- example: skip=gpu -->

with one of the reasons in :data:`SKIP_REASONS`. Such an example is still
parsed: Python is compiled and the ``critic`` names and keyword arguments it
uses must exist; each ``critic`` command line must parse with the real
argument parser; each ``make`` target must exist.

Run ``python -m tests.docs.examples`` for the inventory (executed and skipped,
by reason), without running anything.
"""

from __future__ import annotations

import re
import shlex
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
#: Folders of docs/ that hold no pages: the build hooks and the screenshots.
EXCLUDED = ("hooks", "screenshots")
#: The top-level documents checked besides docs/.
TOP_LEVEL = ("README.md",)

PYTHON = frozenset({"python", "py"})
SHELL = frozenset({"bash", "sh", "shell"})
CONSOLE = frozenset({"console"})
OUTPUT = "output"
#: Why an example may be left out of the run; anything else is a typo, and a test says so.
SKIP_REASONS = {
    "gpu": "needs a CUDA GPU",
    "weights": "needs model weights that cannot be downloaded here (such as the 8B judges)",
    "network": "reaches a network service or the Hugging Face hub",
    "install": "installs packages or changes the environment",
    "server": "needs a server running beside it (critic serve)",
    "long": "takes minutes (the whole suite, a benchmark, a vLLM engine start-up)",
}

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*)$")
_DIRECTIVE = re.compile(r"^\s*<!--\s*example:(?P<options>.*?)-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a Markdown file."""

    path: Path
    line: int  # the 1-based line of the opening fence
    language: str
    source: str
    options: dict[str, str] = field(default_factory=dict)  # from the <!-- example: ... --> line before it


@dataclass(frozen=True)
class Example:
    """A block to run (or, when ``skip`` is set, to parse only), with the output shown under it."""

    block: Block
    index: int  # its position among the page's examples
    expected: str | None  # a python block's output block; console blocks hold their own

    @property
    def kind(self) -> str:
        language = self.block.language
        return "python" if language in PYTHON else "console" if language in CONSOLE else "shell"

    @property
    def skip(self) -> str | None:
        return self.block.options.get("skip")

    @property
    def id(self) -> str:
        return f"{relative(self.block.path)}:{self.block.line}"

    def mentions_demo_model(self) -> bool:
        """Whether running it loads the demo model (or its tokenizer): a `model` test."""
        text = self.block.source
        return bool(re.search(r"\bdemo\b", text)) or bool(re.search(r"\bcritic prompt\b(?!.*--model)", text))


def relative(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def documents() -> list[Path]:
    """The Markdown files whose examples are checked: the top-level ones and docs/ (less its excluded folders)."""
    found = [ROOT / name for name in TOP_LEVEL if (ROOT / name).exists()]
    for path in sorted(DOCS.rglob("*.md")):
        if path.relative_to(DOCS).parts[0] not in EXCLUDED:
            found.append(path)
    return found


def blocks(path: Path) -> list[Block]:
    """Every fenced block of ``path``, with the example options of the comment line just before it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        info = opening["info"].strip()
        language = info.split()[0].strip("{}.").lower() if info else ""
        body: list[str] = []
        end = index + 1
        while end < len(lines) and not re.match(rf"^{re.escape(indent)}{fence[0]}{{{len(fence)},}}\s*$", lines[end]):
            body.append(lines[end][len(indent):] if lines[end].startswith(indent) else lines[end].lstrip())
            end += 1
        if end == len(lines):
            raise ValueError(f"{relative(path)}:{index + 1}: a code fence is never closed")
        found.append(Block(path, index + 1, language, "\n".join(body) + "\n" if body else "",
                           _options(lines, index, path)))
        index = end + 1
    return found


def _options(lines: list[str], fence: int, path: Path) -> dict[str, str]:
    """The ``key=value`` words of an ``<!-- example: ... -->`` line right above the fence (blank lines between)."""
    above = fence - 1
    while above >= 0 and not lines[above].strip():
        above -= 1
    if above < 0:
        return {}
    directive = _DIRECTIVE.match(lines[above])
    if not directive:
        return {}
    options: dict[str, str] = {}
    for word in shlex.split(directive["options"]):
        key, _, value = word.partition("=")
        options[key] = value
    unknown = options.keys() - {"skip"}
    if unknown:
        raise ValueError(f"{relative(path)}:{above + 1}: unknown example option(s) {sorted(unknown)}; known: skip")
    if "skip" in options and options["skip"] not in SKIP_REASONS:
        raise ValueError(f"{relative(path)}:{above + 1}: unknown skip reason {options['skip']!r}; "
                         f"choose one of {', '.join(SKIP_REASONS)}")
    return options


def examples(path: Path) -> list[Example]:
    """The examples of one page, in order; an ``output`` block belongs to the python block just above it."""
    page = blocks(path)
    found: list[Example] = []
    for position, block in enumerate(page):
        if block.language == OUTPUT:
            previous = page[position - 1] if position else None
            if previous is None or previous.language not in PYTHON or not _adjacent(path, previous, block):
                raise ValueError(f"{relative(path)}:{block.line}: an output block must follow a python block")
            continue
        if block.language not in PYTHON | SHELL | CONSOLE:
            continue
        following = page[position + 1] if position + 1 < len(page) else None
        expected = None
        if block.language in PYTHON and following is not None and following.language == OUTPUT \
                and _adjacent(path, block, following):
            expected = following.source
        found.append(Example(block, len(found), expected))
    return found


def _adjacent(path: Path, first: Block, second: Block) -> bool:
    """Whether only blank lines stand between the end of ``first`` and the fence of ``second``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    closing = first.line + first.source.count("\n")  # 0-based index of first's closing fence
    return all(not line.strip() for line in lines[closing + 1 : second.line - 1])


def all_examples() -> list[Example]:
    return [example for path in documents() for example in examples(path)]


def inventory(found: list[Example]) -> str:
    """How many examples run and how many are only parsed, by reason (the suite prints this too)."""
    skipped = Counter(example.skip for example in found if example.skip)
    ran = len(found) - sum(skipped.values())
    lines = [f"docs examples: {len(found)} in {len({e.block.path for e in found})} files; "
             f"{ran} executed, {sum(skipped.values())} parsed only"]
    for reason, count in sorted(skipped.items()):
        lines.append(f"  {count:3d} skipped: {reason} ({SKIP_REASONS[reason]})")
    return "\n".join(lines)


if __name__ == "__main__":
    every = all_examples()
    print(inventory(every))
    if "-v" in sys.argv[1:]:
        for example in every:
            print(f"  {example.id:40} {example.kind:8} {'skip=' + example.skip if example.skip else 'run'}")
