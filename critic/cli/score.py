"""``critic score``: a reward-model score for every row.
"""

from __future__ import annotations

import argparse
from typing import Any

from critic.cli.common import (
    CHUNK_PAIRS,
    EXIT_OK,
    EXIT_ROW_ERRORS,
    say,
    through_judge,
    write_record,
)
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
from critic.cli.output import open_output, progress
from critic.errors import CriticError
from critic.judges.each import chunked


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
    options, source, total, judge = started.options, started.source, started.total, started.judge
    rows = source.rows()
    columns = options.columns

    def read(row: Any) -> Any:
        return conversation_from_row(row, columns)

    failures = 0
    with open_output(args.output) as out, progress(total, args.quiet, "scoring", unit="row") as bar:
        for chunk in chunked(rows, max(CHUNK_PAIRS, options.limits.max_batch_size)):
            for (number, row), result in zip(chunk, through_judge(chunk, read, judge.score_each), strict=True):
                # The row comes back whole with the score added; a row that is not an object cannot.
                record: dict[str, Any] = dict(row) if isinstance(row, dict) else {"line": number}
                record[args.score_field] = None if isinstance(result, CriticError) else result
                if isinstance(result, CriticError):
                    failures += 1
                    record["error"] = f"line {number}: {result}" if isinstance(row, dict) else str(result)
                write_record(out, record)
            out.flush()
            bar.update(len(chunk))
    if failures:
        say(f"{failures} line(s) could not be scored; see their 'error' field")
        return EXIT_ROW_ERRORS
    return EXIT_OK
