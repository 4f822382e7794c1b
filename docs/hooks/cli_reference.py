"""MkDocs hook: the CLI reference page, generated from critic's argparse parsers at every build.

``docs/reference/cli.md`` holds the marker ``<!-- cli-reference -->``; this hook
replaces it with one section per command (its description, usage, and a table
per flag group with each flag's value and help), read from
``critic.cli.main.parser()``. Nothing in it is written by hand, so a flag
cannot be documented that does not exist, nor exist undocumented.

Any page may hold ``<!-- field-flags -->``: it becomes the table of which
command takes which column flag (``--prompt-field`` and friends), read from the
same parser, because the commands do not all take the same ones.
"""

from __future__ import annotations

import argparse
from typing import Any

MARKER = "<!-- cli-reference -->"
FIELD_FLAGS_MARKER = "<!-- field-flags -->"
PAGE = "reference/cli.md"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:  # noqa: ARG001 (the hook's API)
    from critic.cli.main import parser

    if FIELD_FLAGS_MARKER in markdown:
        markdown = markdown.replace(FIELD_FLAGS_MARKER, field_flags_markdown(parser()))
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"{PAGE} lost its {MARKER} marker")
    return markdown.replace(MARKER, cli_markdown(parser()))


def field_flags(top: argparse.ArgumentParser) -> dict[str, dict[str, argparse.Action]]:
    """Each command's column flags (``--X-field``, ``--label-sign``), from its parser: ``{command: {flag: action}}``."""
    found: dict[str, dict[str, argparse.Action]] = {}
    for name, command in subcommands(top).items():
        flags = {option: action for action in command._actions for option in action.option_strings
                 if option.endswith("-field") or option == "--label-sign"}
        if flags or any(group.title == "input" for group in command._action_groups):
            found[name] = flags
    return found


def field_flags_markdown(top: argparse.ArgumentParser) -> str:
    """A table: one row per column flag, one column per command that reads rows, a mark where it takes the flag."""
    by_command = field_flags(top)
    commands = [name for name, flags in by_command.items() if flags]
    helps: dict[str, str] = {}
    for flags in by_command.values():
        for option, action in flags.items():
            helps.setdefault(option, _help(action))
    out = ["| flag | what it names | " + " | ".join(f"`{name}`" for name in commands) + " |",
           "| --- | --- | " + " | ".join(":---:" for _ in commands) + " |"]
    for option, text in helps.items():
        marks = " | ".join("✓" if option in by_command[name] else "" for name in commands)
        out.append(f"| `{option}` | {_cell(text)} | {marks} |")
    without = [name for name, flags in by_command.items() if not flags]
    if without:
        out += ["", "Read rows without column flags (they recognise their rows by their own shapes): "
                + ", ".join(f"`critic {name}`" for name in without) + "."]
    return "\n".join(out)


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _summaries(parser: argparse.ArgumentParser) -> dict[str, str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {choice.dest: choice.help or "" for choice in action._choices_actions}
    return {}


def cli_markdown(top: argparse.ArgumentParser) -> str:
    """The reference of ``top`` and each of its commands, as Markdown."""
    commands = subcommands(top)
    summaries = _summaries(top)
    out = ["| command | what it does |", "| --- | --- |"]
    out += [f"| [`critic {name}`](#critic-{name}) | {_cell(summaries.get(name, ''))} |" for name in commands]
    out += ["", "## critic", "", top.description or "", "", "```text", top.format_usage().strip(), "```", ""]
    out += _groups(top, skip_subcommands=True)
    if top.epilog:
        out += [top.epilog[0].upper() + top.epilog[1:] + ".", ""]
    for name, command in commands.items():
        out += [f"## critic {name}", "", command.description or summaries.get(name, ""), "",
                "```text", command.format_usage().strip(), "```", ""]
        out += _groups(command)
    return "\n".join(out)


def _groups(parser: argparse.ArgumentParser, *, skip_subcommands: bool = False) -> list[str]:
    out: list[str] = []
    for group in parser._action_groups:
        actions = [action for action in group._group_actions
                   if action.help != argparse.SUPPRESS
                   and not (skip_subcommands and isinstance(action, argparse._SubParsersAction))]
        if not actions:
            continue
        title = {"options": "Options", "positional arguments": "Arguments"}.get(group.title or "", group.title)
        out += [f"**{title}**", "", "| flag | value | what it does |", "| --- | --- | --- |"]
        for action in actions:
            out.append(f"| {_names(action)} | {_value(action)} | {_cell(_help(action))} |")
        out.append("")
    return out


def _names(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`"
    return ", ".join(f"`{option}`" for option in action.option_strings)


def _value(action: argparse.Action) -> str:
    if action.nargs == 0:
        return ""
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
        return " \\| ".join(f"`{choice}`" for choice in action.choices)
    if not action.option_strings:
        return "optional" if action.nargs == "?" else "required"
    metavar = action.metavar or action.dest.upper()
    return f"`{metavar}`" + (" (required)" if action.required else "")


def _help(action: argparse.Action) -> str:
    text = action.help or ""
    if "%(" in text:
        text = text % {"default": action.default, "prog": "critic", "choices": action.choices}
    return text


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
