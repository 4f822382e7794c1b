"""``critic prompt`` and ``critic templates``: what the model reads, and the built-in templates.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from critic.backends.loading import DEMO_ALIAS
from critic.cli.common import EXIT_OK
from critic.cli.options import add_model_flag
from critic.templates import DEFAULT_TEMPLATE, builtin_templates
from critic.types import MODES


def add_info_parsers(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    prompt = commands.add_parser("prompt", parents=parents, help="show exactly what the model reads for one pair")
    add_model_flag(prompt, default=DEMO_ALIAS, help=f"whose tokenizer and chat template (default: {DEMO_ALIAS})")
    prompt.add_argument("--template", default=DEFAULT_TEMPLATE,
                        help=f"built-in name or .jinja path (default: {DEFAULT_TEMPLATE})")
    prompt.add_argument("--mode", choices=MODES, default="score", help="how verdicts are read (default: score)")
    prompt.add_argument("--trust-remote-code", action="store_true",
                        help="run the model repository's own code (only for models you trust)")
    prompt.add_argument("--prompt", required=True)
    prompt.add_argument("--response-a", required=True)
    prompt.add_argument("--response-b", required=True)
    prompt.add_argument("--reference")
    prompt.set_defaults(run=run_prompt)

    templates = commands.add_parser("templates", parents=parents, help="list the built-in judge templates")
    templates.set_defaults(run=run_templates)


def run_prompt(args: argparse.Namespace) -> int:
    from critic import render_prompt
    from critic.backends.loading import load_tokenizer, resolve_model
    from critic.templates import load_template

    template = load_template(args.template)  # a bad template is one sentence before the tokenizer loads
    tokenizer = load_tokenizer(resolve_model(args.model), trust_remote_code=args.trust_remote_code)
    text = render_prompt(args.prompt, args.response_a, args.response_b, reference=args.reference,
                         tokenizer=tokenizer, template=template, mode=args.mode)
    sys.stdout.write(text + "\n")
    return EXIT_OK


def run_templates(args: argparse.Namespace) -> int:
    from critic.templates import load_template

    names = builtin_templates()
    width = max(map(len, names), default=0)
    for name in names:
        template = load_template(name)
        kind = "explanation, then verdict" if template.explanation_first else "verdict only"
        print(f"{name:{width}} verdicts {'/'.join(template.verdicts):6} {kind}")
    return EXIT_OK
