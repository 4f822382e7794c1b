"""``critic score``: a reward-model score for every row.
"""

from __future__ import annotations

import argparse
from typing import Any

from critic.cli.common import CHUNK_PAIRS
from critic.cli.files import finish, write_results
from critic.cli.judge import INPUTS
from critic.cli.loading import start_file_command
from critic.io.rows import conversation_from_row
from critic.cli.options import (
    SCORE_FIELDS,
    add_batch_flags,
    add_file_flags,
    add_input_flags,
    add_load_flags,
    add_model_flag,
)
from critic.cli.output import cli_wording
from critic.errors import CriticError


def add_score_parser(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    from critic.backends.reward import DEFAULT_REWARD_MODEL

    parser = commands.add_parser(
        "score", parents=parents,
        help="add a reward-model score to every row of a file of conversations",
        description="Score each row with a reward model and write the row back with a score column. A row "
                    "is a conversation (a 'messages' list ending with the assistant's response) or a prompt "
                    "and a response (with optional 'history' turns before the prompt). A conversation over "
                    "--max-length fails its row.",
    )
    add_file_flags(parser, INPUTS)
    parser.add_argument("--score-field", default="reward", help="name of the added column (default: reward)")
    group = parser.add_argument_group("reward model")
    add_model_flag(group, default=DEFAULT_REWARD_MODEL,
                   help=f"reward model: hub id or local folder (default: {DEFAULT_REWARD_MODEL})")
    add_load_flags(parser)
    add_batch_flags(parser, overflow=False)
    add_input_flags(parser, fields=SCORE_FIELDS)
    parser.set_defaults(run=run_score)


def run_score(args: argparse.Namespace) -> int:
    started = start_file_command(args, "reward")
    columns = started.options.columns

    def record(number: int, row: Any, result: Any) -> dict[str, Any]:
        # The row comes back whole with the score added; a row that is not an object cannot.
        line: dict[str, Any] = dict(row) if isinstance(row, dict) else {"line": number}
        line[args.score_field] = None if isinstance(result, CriticError) else result
        if isinstance(result, CriticError):
            error = cli_wording(str(result))
            line["error"] = f"line {number}: {error}" if isinstance(row, dict) else error
        return line

    summary = write_results(args, started.rows, total=started.total,
                            chunk_size=max(CHUNK_PAIRS, started.options.limits.max_batch_size),
                            read=lambda row: conversation_from_row(row, columns), run=started.judge.score_each,
                            record=record)
    return finish(summary, quiet=args.quiet)
