"""What the documentation names must exist: ``critic`` flags, commands, functions and their keyword arguments.

Checked on every example (run or skipped) and on the inline code of the prose:

- each ``critic ...`` command line parses with :func:`critic.cli.main.parser`
  (an unknown command or flag, a bad choice or a missing argument fails);
- each inline ``--flag`` (a span that is a flag, or a ``critic ...`` command)
  is a flag of some ``critic`` command (or is listed in
  :data:`OTHER_TOOLS_FLAGS`, other tools' flags the prose names alone);
- each ``critic.x.y`` name resolves (a module, or an attribute of one);
- in Python, each ``from critic... import name`` resolves, and each call of a
  critic function or class uses keyword arguments its signature has.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import functools
import importlib
import inspect
import io
import re
import shlex
from typing import Any

#: Flags the prose may name that belong to other tools.
OTHER_TOOLS_FLAGS = frozenset({"--strict", "--no-deps", "--help", "--version", "--remote_rm_url", "--label_key"})
_INLINE_CODE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
_DOTTED = re.compile(r"\bcritic(?:\.[A-Za-z_]\w*)+")


@functools.lru_cache(maxsize=1)
def _parser() -> argparse.ArgumentParser:
    from critic.cli.main import parser

    return parser()


@functools.lru_cache(maxsize=1)
def every_flag() -> frozenset[str]:
    """Every option string of every ``critic`` command (and of ``critic`` itself)."""
    top = _parser()
    flags = {option for action in top._actions for option in action.option_strings}
    for command in _subcommands(top).values():
        flags |= {option for action in command._actions for option in action.option_strings}
    return frozenset(flags)


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def command_problem(argv: list[str]) -> str | None:
    """Why ``critic ARGV`` does not parse, or ``None`` when it does (``--help``/``--version`` parse)."""
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
            _parser().parse_args(argv)
    except SystemExit as exit:
        if exit.code not in (0, None):
            return errors.getvalue().strip() or f"exit {exit.code}"
    return None


def critic_command_lines(source: str) -> list[list[str]]:
    """The argument lists of the ``critic`` commands in a shell block (``$ `` prompts and ``\\`` joins read)."""
    found: list[list[str]] = []
    for words in shell_words(source):
        while words and re.fullmatch(r"[A-Za-z_]\w*=.*", words[0]):
            words.pop(0)
        if words[:1] == ["critic"]:
            found.append(words[1:])
    return found


def shell_words(source: str) -> list[list[str]]:
    """The words of each command line of a shell block: in a console block, only the ``$ `` lines."""
    logical = re.sub(r"\\\n\s*", " ", source)
    console = any(line.startswith("$ ") for line in logical.splitlines())
    found = []
    for line in logical.splitlines():
        if console and not line.startswith("$ "):
            continue  # the output a console block shows under its command
        try:
            words = shlex.split(line[2:] if console else line, comments=True)
        except ValueError:  # prose in an inline span, say; a real command line is checked when it runs
            continue
        if words:
            found.append(words)
    return found


def resolve(dotted: str) -> Any:
    """The object a dotted ``critic...`` name stands for, or :class:`LookupError` saying which part is missing."""
    parts = dotted.split(".")
    obj: Any = None
    for end in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:end]))
        except ImportError:
            continue
        for position in range(end, len(parts)):
            if not hasattr(obj, parts[position]):
                raise LookupError(f"'{dotted}': {'.'.join(parts[:position])} has no '{parts[position]}'")
            obj = getattr(obj, parts[position])
        return obj
    raise LookupError(f"'{dotted}' does not import")


def python_problems(source: str) -> list[str]:
    """Names and keyword arguments of critic that a Python block uses and that do not exist."""
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        return [f"does not compile: {error.msg} (line {error.lineno})"]
    known: dict[str, str] = {}  # local name -> dotted critic name
    problems: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "critic":
                    known[alias.asname or alias.name.split(".")[0]] = alias.asname and alias.name or "critic"
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "critic":
            for alias in node.names:
                known[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    for dotted in known.values():
        try:
            resolve(dotted)
        except LookupError as error:
            problems.append(str(error))
    for node in ast.walk(tree):
        dotted = _dotted(node, known)
        if dotted is not None and isinstance(node, ast.Attribute):
            try:
                resolve(dotted)
            except LookupError as error:
                problems.append(str(error))
        if isinstance(node, ast.Call):
            problems.extend(_call_problems(node, known))
    return sorted(set(problems))


def _dotted(node: ast.AST, known: dict[str, str]) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id in known:
        return ".".join([known[node.id], *reversed(parts)])
    return None


def _call_problems(call: ast.Call, known: dict[str, str]) -> list[str]:
    dotted = _dotted(call.func, known)
    if dotted is None or any(isinstance(arg, ast.Starred) for arg in call.args) \
            or any(keyword.arg is None for keyword in call.keywords):
        return []
    try:
        target = resolve(dotted)
        signature = inspect.signature(target)
    except (LookupError, TypeError, ValueError):
        return []
    try:
        signature.bind_partial(*[None] * len(call.args), **{keyword.arg: None for keyword in call.keywords
                                                             if keyword.arg is not None})
    except TypeError as error:
        return [f"{dotted}(...): {error}"]
    return []


def inline_code(markdown: str) -> list[str]:
    """The inline code spans of the prose (fenced blocks left out)."""
    prose = re.sub(r"^([ \t]*)(`{3,}|~{3,}).*?^\1\2[ \t]*$", "", markdown, flags=re.DOTALL | re.MULTILINE)
    return _INLINE_CODE.findall(prose)


def prose_problems(markdown: str) -> list[str]:
    """Flags, commands and critic names in the inline code of a page that do not exist."""
    problems: list[str] = []
    for span in inline_code(markdown):
        if not span.startswith(("--", "critic ")):
            flags: list[str] = []  # another tool's command line (`python benchmarks/...`, `pip ...`)
        else:
            flags = re.findall(r"(?<![\w-])--[a-z][\w-]*", span)
        for flag in flags:
            if flag not in every_flag() and flag not in OTHER_TOOLS_FLAGS:
                problems.append(f"`{span}`: no critic command has the flag {flag}")
        for argv in critic_command_lines(span):
            placeholders = any(re.fullmatch(r"[A-Z][A-Z_]*|\.\.\.", word) for word in argv)
            if argv and argv[0] in _subcommands(_parser()) and not placeholders:
                problem = command_problem(argv)
                if problem and "required" not in problem:  # a span may leave out what a command needs
                    problems.append(f"`{span}`: {problem}")
            elif argv and not argv[0].startswith("-") and not placeholders:
                problems.append(f"`{span}`: critic has no command '{argv[0]}'")
        for dotted in _DOTTED.findall(span):
            try:
                resolve(dotted)
            except LookupError as error:
                problems.append(f"`{span}`: {error}")
    return problems
