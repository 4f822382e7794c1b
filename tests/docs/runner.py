"""Running the documentation's examples: Python in one namespace per page, ``critic`` commands in-process.

Each page runs in its own scratch folder that holds links to the repository's
files (so ``examples/pairs.jsonl`` reads as in a clone) and a ``../shared``
link when the team's shared material is there; ``out/...`` is written in the
scratch folder. A ``critic`` command runs through :func:`critic.cli.main.main`
with stdout and stderr captured together, as a terminal shows them; a word with
a wildcard (``examples/arena/*.jsonl``) is expanded in the scratch folder, as a
shell would; ``make TARGET`` runs the target's recipe when it is only ``critic``
and ``echo`` lines. A command that exits with a status other than 0 prints
``[exit N]`` as its last line (a console block shows it under the command), so
the documented exit statuses are checked too.

Shown output is compared by :func:`matches`: lines are compared after their
trailing spaces; ``...`` alone on a line stands for any number of lines, and
inside a line for any text; a number with decimals matches the printed number
to one unit in its last shown decimal (``0.504`` matches 0.5041 and 0.505, not
0.507), a whole number exactly.
"""

from __future__ import annotations

import contextlib
import difflib
import glob
import io
import logging
import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .examples import ROOT, Example

SHARED = ROOT.parent / "shared"
_NUMBER = r"-?\d+(?:\.\d+)?"
_NUMBER_TOKEN = re.compile(rf"(?<![\w.]){_NUMBER}(?![\d])")


class ExampleFailed(AssertionError):
    """An example raised, or printed something other than what the page shows."""


@dataclass
class ModelCache:
    """Models and tokenizers already loaded, by what identifies a load (see :func:`shared_models`)."""

    entries: dict[tuple[Any, ...], Any] = field(default_factory=dict)

    @staticmethod
    def model_key(source: Any, model_class: Any, device: Any, dtype: Any, attention: Any) -> tuple[Any, ...]:
        return ("model", source.location, source.gguf_file, model_class.__name__, str(device), str(dtype),
                str(attention))

    @staticmethod
    def tokenizer_key(source: Any) -> tuple[Any, ...]:
        return ("tokenizer", source.location, source.gguf_file)

    def seed(self, model_name: str, model: Any, tokenizer: Any) -> None:
        """Hand over a model loaded elsewhere (the suite's session demo model), so it is not loaded twice."""
        from transformers import AutoModelForCausalLM

        from critic.backends.loading import resolve_model

        source = resolve_model(model_name)
        key = self.model_key(source, AutoModelForCausalLM, model.device.type, model.dtype,
                             model.config._attn_implementation)
        self.entries.setdefault(key, model)
        self.entries.setdefault(self.tokenizer_key(source), tokenizer)


@contextlib.contextmanager
def shared_models() -> Iterator[ModelCache]:
    """While inside: a model or tokenizer loaded once is reused by every later example that loads the same one.

    The loading pipeline runs as usual (device and dtype choice, resolution,
    errors); only the final weight and tokenizer loads are answered from this
    cache when the same source, class, device, dtype and attention were loaded
    before. Outside the block, nothing is shared.
    """
    from critic.backends import loading

    cache = ModelCache()
    load_model, load_tokenizer = loading.load_model, loading.load_tokenizer

    def cached_model(source: Any, model_class: Any, *, device: Any, dtype: Any, attn_implementation: Any,
                     trust_remote_code: bool = False, **options: Any) -> Any:
        key = cache.model_key(source, model_class, device, dtype, attn_implementation)
        if trust_remote_code or key not in cache.entries:
            loaded = load_model(source, model_class, device=device, dtype=dtype,
                                attn_implementation=attn_implementation, trust_remote_code=trust_remote_code,
                                **options)
            if trust_remote_code:
                return loaded  # a repository's own code may build anything: never shared
            cache.entries[key] = loaded
        return cache.entries[key]

    def cached_tokenizer(source: Any, *, trust_remote_code: bool = False, **options: Any) -> Any:
        key = cache.tokenizer_key(source)
        if trust_remote_code or key not in cache.entries:
            loaded = load_tokenizer(source, trust_remote_code=trust_remote_code, **options)
            if trust_remote_code:
                return loaded
            cache.entries[key] = loaded
        return cache.entries[key]

    loading.load_model, loading.load_tokenizer = cached_model, cached_tokenizer  # type: ignore[assignment]
    try:
        yield cache
    finally:
        loading.load_model, loading.load_tokenizer = load_model, load_tokenizer  # type: ignore[assignment]


# -- comparing output ---------------------------------------------------------------------------------------------


def matches(expected: str, actual: str) -> bool:
    """Whether ``actual`` is what ``expected`` shows (see the module docstring for ``...`` and numbers)."""
    pattern, numbers = _pattern(expected)
    found = re.fullmatch(pattern, _normalise(actual), flags=re.DOTALL)
    if found is None:
        return False
    return all(_close(shown, printed) for shown, printed in zip(numbers, found.groups(), strict=True))


def _normalise(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def _pattern(expected: str) -> tuple[str, list[str]]:
    numbers: list[str] = []
    parts: list[str] = []
    for line in _normalise(expected).split("\n"):
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*(?:\n|$))*?")
            continue
        pieces = []
        for chunk_index, chunk in enumerate(line.split("...")):
            if chunk_index:
                pieces.append(r"[^\n]*?")
            position = 0
            for number in _NUMBER_TOKEN.finditer(chunk):
                pieces.append(re.escape(chunk[position : number.start()]))
                pieces.append(rf"(?<![\w.])({_NUMBER})(?!\d)")
                numbers.append(number.group())
                position = number.end()
            pieces.append(re.escape(chunk[position:]))
        parts.append("".join(pieces) + r"(?:\n|$)")
    return "".join(parts), numbers


def _close(shown: str, printed: str) -> bool:
    if "." not in shown:
        return shown == printed
    decimals = len(shown.split(".")[1])
    return abs(float(printed) - float(shown)) <= 10 ** -decimals + 1e-12


def difference(expected: str, actual: str) -> str:
    diff = difflib.unified_diff(_normalise(expected).splitlines(), _normalise(actual).splitlines(),
                                "shown in the docs", "printed now", lineterm="")
    return "\n".join(diff)


# -- one page's state ---------------------------------------------------------------------------------------------


@dataclass
class Page:
    """A page's examples run in order, in one scratch folder and one Python namespace."""

    folder: Path
    namespace: dict[str, Any] = field(default_factory=lambda: {"__name__": "__main__"})
    done: set[int] = field(default_factory=set)

    @classmethod
    def create(cls, scratch: Path) -> Page:
        work = scratch / "critic"
        work.mkdir(parents=True)
        for entry in ROOT.iterdir():
            if entry.name not in {"out", ".git"} and not entry.name.startswith("."):
                (work / entry.name).symlink_to(entry)
        if SHARED.exists():
            (scratch / "shared").symlink_to(SHARED)
        return cls(work)

    def run(self, example: Example, earlier: list[Example]) -> str:
        """Run the examples before ``example`` that have not run yet, then ``example``; returns what it printed."""
        for previous in earlier:
            if previous.index not in self.done and not previous.skip:
                self._run(previous)
        return self._run(example)

    def _run(self, example: Example) -> str:
        self.done.add(example.index)
        with _inside(self.folder):
            if example.kind == "python":
                return run_python(example, self.namespace)
            if example.kind == "console":
                return run_console(example)
            return run_shell(example)


@contextlib.contextmanager
def _inside(folder: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


# -- python -------------------------------------------------------------------------------------------------------


def run_python(example: Example, namespace: dict[str, Any]) -> str:
    code = compile(example.block.source, example.id, "exec")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(code, namespace)  # noqa: S102 (the documentation's own example)
    text = printed.getvalue()
    if example.expected is not None and not matches(example.expected, text):
        raise ExampleFailed(f"{example.id}: the output differs from the page\n"
                            f"{difference(example.expected, text)}")
    return text


# -- shell --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    line: int
    text: str
    expected: str | None  # console blocks: what the page shows under the command


def shell_commands(example: Example) -> list[Command]:
    """The logical command lines of a bash or console block (``\\`` continuations joined)."""
    commands: list[Command] = []
    lines = example.block.source.splitlines()
    index = 0
    console = example.kind == "console"
    while index < len(lines):
        line = lines[index]
        if console and not line.startswith("$ "):
            raise ExampleFailed(f"{example.id}: console blocks start each command with '$ ', got {line!r}")
        text = line[2:] if console else line
        start = index
        while text.rstrip().endswith("\\") and index + 1 < len(lines):
            index += 1
            text = text.rstrip()[:-1] + " " + lines[index].strip()
        index += 1
        output: list[str] = []
        while console and index < len(lines) and not lines[index].startswith("$ "):
            output.append(lines[index])
            index += 1
        words = shlex.split(text, comments=True)
        if words:
            commands.append(Command(example.block.line + 1 + start, text, "\n".join(output) if console else None))
    return commands


def run_console(example: Example) -> str:
    shown = []
    for command in shell_commands(example):
        printed = run_command(example, command)
        shown.append(printed)
        if command.expected is not None and not matches(command.expected, printed):
            raise ExampleFailed(f"{example.id}: `{command.text}` printed something else than the page shows\n"
                                f"{difference(command.expected, printed)}")
    return "".join(shown)


def run_shell(example: Example) -> str:
    return "".join(run_command(example, command) for command in shell_commands(example))


def run_command(example: Example, command: Command) -> str:
    words = shlex.split(command.text, comments=True)
    env: dict[str, str] = {}
    while words and re.fullmatch(r"[A-Za-z_]\w*=.*", words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    words = [expanded for word in words for expanded in _expand(word)]
    if words[0] == "critic":
        return run_critic(words[1:], env)
    if words[0] == "make" and len(words) == 2:
        return "".join(run_command(example, Command(command.line, recipe, None))
                       for recipe in make_recipe(words[1]))
    if words[0] == "echo":
        return " ".join(words[1:]) + "\n"
    raise ExampleFailed(f"{example.id}: `{command.text}` is not a command the docs can run in-process "
                        "(critic, make TARGET, echo); mark the block with <!-- example: skip=REASON -->")


def _expand(word: str) -> list[str]:
    """A word with a wildcard as a shell expands it (sorted; left as typed when nothing matches)."""
    if not glob.has_magic(word):
        return [word]
    return sorted(glob.glob(word)) or [word]


def run_critic(argv: list[str], env: dict[str, str]) -> str:
    """``critic ARGV`` in this process, stdout and stderr together; the library's log as the real command logs it.

    A status other than 0 ends the output with ``[exit N]``.
    """
    from critic.cli.main import main

    out = io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    root.handlers = []  # so the command's own logging.basicConfig writes to the captured stderr, as in a terminal
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            status = main(argv)
    finally:
        root.handlers, root.level = handlers, level
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    printed = _without_progress_bars(out.getvalue())
    if status:
        printed += ("" if not printed or printed.endswith("\n") else "\n") + f"[exit {status}]\n"
    return printed


# A tqdm bar ("label:  42%|####      | 114/272 [00:02<00:01, 88.61it/s]"), as transformers draws one while it
# de-quantises a GGUF. The real command sets TQDM_DISABLE before tqdm is first imported; in this process tqdm
# was imported long before, so its bars are taken out here (a terminal would redraw them in place anyway).
_PROGRESS_BAR = re.compile(r"(?:\r?[^\r\n]*\d+%\|[^|\r\n]*\| *\d+/\d+ \[[^\]\r\n]*\][ \t]*)+\r?\n?")


def _without_progress_bars(text: str) -> str:
    return _PROGRESS_BAR.sub("", text)


def make_targets() -> dict[str, list[str]]:
    """The Makefile's targets and their recipe lines (``$(BIN)/`` dropped, ``@`` dropped)."""
    targets: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in (ROOT / "Makefile").read_text(encoding="utf-8").splitlines():
        rule = re.match(r"^([A-Za-z][\w-]*)\s*:(?!=)", line)
        if rule:
            current = targets.setdefault(rule.group(1), [])
        elif line.startswith("\t") and current is not None:
            current.append(line.strip().lstrip("@").replace("$(BIN)/", ""))
        elif line.strip() and not line.startswith("#"):
            current = None
    return targets


def make_recipe(target: str) -> list[str]:
    recipe = make_targets().get(target)
    if recipe is None:
        raise ExampleFailed(f"the Makefile has no target '{target}'")
    unknown = [line for line in recipe if not line.startswith(("critic ", "echo "))]
    if unknown:
        raise ExampleFailed(f"`make {target}` runs {unknown[0]!r}, which the docs cannot run in-process; "
                            "mark the block with <!-- example: skip=REASON -->")
    return recipe


def main(argv: list[str]) -> int:
    """``python -m tests.docs.runner PAGE.md ...``: run each page's examples and print what each printed.

    For writing a page: paste what an example printed under it, check it reads
    right, and let the suite hold it from then on. Failures are printed, not raised.
    """
    import tempfile

    from .examples import examples

    for name in argv:
        path = Path(name).resolve()
        with tempfile.TemporaryDirectory() as scratch, shared_models():
            page = Page.create(Path(scratch))
            found = examples(path)
            for example in found:
                print(f"===== {example.id} ({example.kind}{', skip=' + example.skip if example.skip else ''})")
                if example.skip:
                    continue
                try:
                    print(page.run(example, found[: example.index]), end="")
                except Exception as error:  # noqa: BLE001 (a report for the writer, not a test)
                    print(f"!!!!! {type(error).__name__}: {error}")
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
