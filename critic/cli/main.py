"""The ``critic`` command: the argument parser and the entry point.

The CLI is the only part of critic that prints: it parses arguments, does the file I/O,
draws progress bars and chooses exit codes; the library does the judging.

Exit codes: 0 done; 1 done, but some rows failed (see their error); 2 a usage or input
error, said in one line (``critic: error: ...``); 70 an internal error (a bug: ``-v``
shows the traceback); 130 interrupted; 141 the output pipe closed (``| head``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from critic.cli.common import EXIT_BROKEN_PIPE, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USAGE
from critic.cli.arena import add_arena_parser
from critic.cli.eval import add_eval_parser
from critic.cli.filter import add_filter_parser
from critic.cli.info import add_info_parsers
from critic.cli.judge import add_judge_parser
from critic.cli.score import add_score_parser
from critic.cli.serve import add_serve_parser
from critic.errors import CriticError


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error said in one line plus where to look (not a screen of usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command line; returns its exit code (argparse's --help, --version and usage errors included)."""
    try:
        args = parser().parse_args(argv)
    except SystemExit as exit:  # --help, --version (0) and usage errors (2), already printed
        return exit.code if isinstance(exit.code, int) else EXIT_USAGE
    verbose = bool(getattr(args, "verbose", False))
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not verbose:
        _quiet_transformers()
    try:
        return int(args.run(args))
    except CriticError as error:
        print(f"critic: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("critic: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `critic judge ... | head`: the reader has gone, nothing to say
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (so the exit's own flush does not fail again)
        return EXIT_BROKEN_PIPE
    except OSError as error:  # the disk is full, a file vanished mid-run: no bug, one sentence
        where = f" '{error.filename}'" if error.filename else ""
        print(f"critic: error: {error.strerror or error}{where}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as error:  # noqa: BLE001 (a bug in critic: one line, the traceback with -v)
        if verbose:
            traceback.print_exc()
        print(f"critic: internal error: {type(error).__name__}: {error}", file=sys.stderr)
        if not verbose:
            print("critic: this is a bug in critic; rerun with -v to see the traceback, and report it",
                  file=sys.stderr)
        return EXIT_INTERNAL


def parser() -> argparse.ArgumentParser:
    from critic import __version__

    top = Parser(prog="critic", description="Pairwise preference labels from a judge model.",
                 epilog="exit codes: 0 done; 1 some rows failed (see their error); 2 usage or input error; "
                        "70 internal error (rerun with -v for the traceback); 130 interrupted")
    top.add_argument("--version", action="version", version=f"critic {__version__}")
    top.add_argument("-v", "--verbose", action="store_true", help="log what the library does; full tracebacks")
    # -v after the command too; SUPPRESS keeps a `critic -v judge ...` from being reset by the subcommand
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log what the library does; full tracebacks")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_judge_parser(commands, [shared])
    add_info_parsers(commands, [shared])
    add_filter_parser(commands, [shared])
    add_eval_parser(commands, [shared])
    add_score_parser(commands, [shared])
    add_serve_parser(commands, [shared])
    add_arena_parser(commands, [shared])
    return top


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
    try:  # the hub client logs every retry of an unreachable hub; the final error is said once, by critic
        from huggingface_hub.utils import logging as hub_logging

        hub_logging.set_verbosity_error()
    except ImportError:
        pass
