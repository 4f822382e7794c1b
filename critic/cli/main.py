"""The ``critic`` command: the argument parser and the entry point.

The CLI is the only part of critic that prints: it parses arguments, does the file I/O,
draws progress bars and chooses exit codes; the library does the judging.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from critic.backends.loading import DEMO_ALIAS
from critic.cli.common import EXIT_FAILURE, _model_options
from critic.cli.eval import _eval_parser
from critic.cli.filter import _filter_parser
from critic.cli.info import run_prompt, run_templates
from critic.cli.judge import run_judge
from critic.cli.score import _score_parser
from critic.errors import CriticError
from critic.templates import DEFAULT_TEMPLATE
from critic.types import MODES


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        _quiet_transformers()
    try:
        return int(args.run(args))
    except CriticError as error:
        print(f"critic: error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("critic: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="critic", description="Pairwise preference labels from a judge model.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the library does")
    commands = parser.add_subparsers(dest="command", required=True)

    judge = commands.add_parser("judge", help="judge the pairs of a JSONL file, one output line per input line")
    judge.add_argument("input", type=Path, help="JSONL file with prompt, response_a, response_b per line ('-' for stdin)")
    judge.add_argument("-o", "--output", type=Path, help="output JSONL (default: stdout)")
    _model_options(judge)
    judge.add_argument("--prompt-field", default="prompt")
    judge.add_argument("--response-a-field", default="response_a")
    judge.add_argument("--response-b-field", default="response_b")
    judge.add_argument("--reference-field", default="reference", help="for reference-guided templates")
    judge.add_argument("--quiet", action="store_true", help="no progress bar")
    judge.add_argument("--table", action="store_true", help="also print a table of the results (for small files)")
    judge.set_defaults(run=run_judge)

    prompt = commands.add_parser("prompt", help="show exactly what the model reads for one pair")
    prompt.add_argument("--model", default=DEMO_ALIAS, help="whose tokenizer and chat template (default: demo)")
    prompt.add_argument("--template", default=DEFAULT_TEMPLATE)
    prompt.add_argument("--mode", choices=MODES, default="score")
    prompt.add_argument("--prompt", required=True)
    prompt.add_argument("--response-a", required=True)
    prompt.add_argument("--response-b", required=True)
    prompt.add_argument("--reference")
    prompt.set_defaults(run=run_prompt)

    templates = commands.add_parser("templates", help="list the built-in judge templates")
    templates.set_defaults(run=run_templates)

    _filter_parser(commands)
    _eval_parser(commands)
    _score_parser(commands)
    return parser


def _quiet_transformers() -> None:
    # transformers draws a bare tqdm bar while de-quantising GGUF weights; tqdm reads
    # TQDM_DISABLE when first imported, and critic's own bars pass ``disable`` explicitly.
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass
