"""``critic prompt`` and ``critic templates``: what the model reads, and the built-in templates.
"""

from __future__ import annotations

import argparse
import sys

from critic.cli.common import EXIT_OK
from critic.templates import builtin_templates


def run_prompt(args: argparse.Namespace) -> int:
    from critic import render_prompt

    text = render_prompt(args.prompt, args.response_a, args.response_b, reference=args.reference,
                         tokenizer=args.model, template=args.template, mode=args.mode)
    sys.stdout.write(text + "\n")
    return EXIT_OK


def run_templates(args: argparse.Namespace) -> int:
    from critic.templates import load_template

    for name in builtin_templates():
        template = load_template(name)
        kind = "explanation, then verdict" if template.explanation_first else "verdict only"
        print(f"{name:16} verdicts {'/'.join(template.verdicts):6} {kind}")
    return EXIT_OK
