"""``critic judge``: one output line per input row, with the judge's preference or the row's error.
"""

from __future__ import annotations

import argparse
from typing import Any

from critic.cli.common import CHUNK_PAIRS
from critic.cli.files import finish, write_results
from critic.cli.loading import start_file_command
from critic.io.rows import pair_from_row
from critic.cli.options import (
    JUDGE_FIELDS,
    add_batch_flags,
    add_file_flags,
    add_input_flags,
    add_judge_flags,
    add_load_flags,
)
from critic.cli.output import cli_wording, judge_table
from critic.errors import CriticError

INPUTS = "JSONL, JSON array, Parquet, CSV, a save_to_disk folder, or a cached hub dataset"


def add_judge_parser(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "judge", parents=parents,
        help="judge the pairs of a file, one output line per input row",
        description="Judge each row's prompt, response_a and response_b (both orders, merged) and write one "
                    "JSON line per input row: its line (row number), id, label, p_a, consistent and orders, "
                    "or an 'error' saying why the row could not be judged.",
    )
    add_file_flags(parser, INPUTS)
    parser.add_argument("--table", action="store_true", help="also print a table of the results (for small files)")
    add_judge_flags(parser)
    add_load_flags(parser)
    add_batch_flags(parser)
    add_input_flags(parser, fields=JUDGE_FIELDS)
    parser.set_defaults(run=run_judge)


def run_judge(args: argparse.Namespace) -> int:
    started = start_file_command(args, "generative")
    columns = started.options.columns
    table: list[tuple[str, Any]] = []

    def record(number: int, row: Any, result: Any) -> dict[str, Any]:
        line: dict[str, Any] = {"line": number}
        if isinstance(row, dict) and "id" in row:
            line["id"] = row["id"]
        if isinstance(result, CriticError):
            line["error"] = cli_wording(str(result))
        else:
            line.update(result.to_dict())
        if args.table:
            table.append((str(line.get("id", number)), result))
        return line

    summary = write_results(args, started.rows, total=started.total, chunk_size=CHUNK_PAIRS,
                            read=lambda row: pair_from_row(row, columns), run=started.judge.compare_each,
                            record=record)
    if table:
        print(judge_table(table))
    return finish(summary, quiet=args.quiet)
