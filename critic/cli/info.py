"""``critic prompt`` and ``critic templates``: what the model reads, and the built-in templates.

``critic prompt`` renders one pair given by flags (``--prompt``, ``--response-a``,
``--response-b``, and the histories of a multi-turn pair as JSON message lists),
or, as a dry run of ``critic judge``, the first rows of a file (``critic prompt
FILE --rows N``), read by the same reader and row shapes as every other command.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from critic.backends.loading import DEMO_ALIAS
from critic.cli.common import EXIT_OK, EXIT_ROW_ERRORS, open_input, say
from critic.cli.options import JUDGE_FIELDS, add_input_flags, add_model_flag, at_least_one
from critic.errors import CriticError, InputError, Reason
from critic.templates import DEFAULT_TEMPLATE, builtin_templates
from critic.types import MODES, Pair

PAIR_FLAGS = ("prompt", "response_a", "response_b")
HISTORY_FLAGS = {
    "history": "earlier turns both answers share",
    "history_a": "response A's own earlier turns (two-conversation pairs, e.g. MT-Bench turn 2)",
    "history_b": "response B's own earlier turns",
    "reference_history": "the reference conversation's earlier turns",
}
DEFAULT_ROWS = 1


def add_info_parsers(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    prompt = commands.add_parser(
        "prompt", parents=parents, help="show exactly what the model reads for one pair, or for a file's first rows",
        description="Show exactly what the judge model reads, special tokens included: for the pair given by "
                    "--prompt, --response-a and --response-b, or, as a dry run of 'critic judge', for the first "
                    "rows of INPUT (--rows N; no model is loaded, only its tokenizer).",
    )
    prompt.add_argument("input", nargs="?", metavar="INPUT",
                        help="a file of pairs, read as 'critic judge' reads it (instead of the pair flags)")
    add_model_flag(prompt, default=DEMO_ALIAS, help=f"whose tokenizer and chat template (default: {DEMO_ALIAS})")
    prompt.add_argument("--template", default=DEFAULT_TEMPLATE,
                        help=f"built-in name or .jinja path (default: {DEFAULT_TEMPLATE})")
    prompt.add_argument("--mode", choices=MODES, default="score", help="how verdicts are read (default: score)")
    prompt.add_argument("--trust-remote-code", action="store_true",
                        help="run the model repository's own code (only for models you trust)")
    pair = prompt.add_argument_group("one pair (without INPUT)")
    pair.add_argument("--prompt", help="the question")
    pair.add_argument("--response-a", help="the first answer")
    pair.add_argument("--response-b", help="the second answer")
    pair.add_argument("--reference", help="a reference answer (reference-guided templates)")
    for name, what in HISTORY_FLAGS.items():
        pair.add_argument(f"--{name.replace('_', '-')}", type=_message_list, metavar="JSON",
                          help=f"{what}: a JSON list of {{\"role\", \"content\"}} messages")
    prompt.add_argument("--rows", dest="limit", type=at_least_one, metavar="N",
                        help=f"render the first N rows of INPUT (default: {DEFAULT_ROWS})")
    add_input_flags(prompt, fields=JUDGE_FIELDS, limit_help="same as --rows")
    prompt.set_defaults(run=run_prompt)

    templates = commands.add_parser("templates", parents=parents, help="list the built-in judge templates")
    templates.set_defaults(run=run_templates)


def _message_list(text: str) -> list[Any]:
    """An argparse type: a JSON list (its messages are checked when the pair is built)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(value, list):
        raise argparse.ArgumentTypeError(f"expected a JSON list of messages, got {type(value).__name__}")
    return value


def run_prompt(args: argparse.Namespace) -> int:
    from critic.backends.loading import load_tokenizer, resolve_model
    from critic.cli.options import build_options
    from critic.templates import load_template

    pair = None if args.input is not None else _pair_from_flags(args)
    if args.input is not None:
        _refuse_pair_flags(args)
    template = load_template(args.template)  # a bad template is one sentence before the tokenizer loads
    columns = build_options(args).columns
    source = open_input(_with_default_rows(args)) if args.input is not None else None
    tokenizer = load_tokenizer(resolve_model(args.model), trust_remote_code=args.trust_remote_code)
    if source is None:
        assert pair is not None
        sys.stdout.write(_render(pair, tokenizer, template, args.mode) + "\n")
        return EXIT_OK
    return _render_rows(source, columns, tokenizer, template, args.mode)


def _render(pair: Pair, tokenizer: Any, template: Any, mode: Any) -> str:
    from critic.rendering import pair_prompt

    return pair_prompt(pair, tokenizer=tokenizer, template=template, mode=mode)


def _render_rows(source: Any, columns: Any, tokenizer: Any, template: Any, mode: Any) -> int:
    """Each row's prompt under a header line; a row that cannot be shown is said on stderr, and the rest go on."""
    from critic.io.rows import pair_from_row

    failures = 0
    for number, row in source.rows():
        try:
            text = _render(pair_from_row(row, columns), tokenizer, template, mode)
        except CriticError as error:
            failures += 1
            say(f"row {number}: {error}")
            continue
        sys.stdout.write(f"--- row {number} ---\n{text}\n")
    if failures:
        say(f"{failures} row(s) could not be rendered")
        return EXIT_ROW_ERRORS
    return EXIT_OK


def _pair_from_flags(args: argparse.Namespace) -> Pair:
    missing = [f"--{name.replace('_', '-')}" for name in PAIR_FLAGS if getattr(args, name) is None]
    if missing:
        raise InputError(f"give INPUT (a file of pairs) or the pair itself: {', '.join(missing)} missing "
                         "(see 'critic prompt --help')", kind=Reason.BAD_ARGUMENT)
    histories = {name: tuple(getattr(args, name) or ()) for name in HISTORY_FLAGS}
    return Pair(args.prompt, args.response_a, args.response_b, args.reference, **histories)


def _refuse_pair_flags(args: argparse.Namespace) -> None:
    given = [f"--{name.replace('_', '-')}" for name in (*PAIR_FLAGS, "reference", *HISTORY_FLAGS)
             if getattr(args, name) is not None]
    if given:
        raise InputError(f"give INPUT or the pair flags, not both ({', '.join(given)} given with '{args.input}')",
                         kind=Reason.BAD_ARGUMENT)


def _with_default_rows(args: argparse.Namespace) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(args), "limit": args.limit or DEFAULT_ROWS})


def run_templates(args: argparse.Namespace) -> int:
    from critic.templates import load_template

    names = builtin_templates()
    width = max(map(len, names), default=0)
    for name in names:
        template = load_template(name)
        kind = "explanation, then verdict" if template.explanation_first else "verdict only"
        print(f"{name:{width}} verdicts {'/'.join(template.verdicts):6} {kind}")
    return EXIT_OK
