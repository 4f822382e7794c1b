"""``critic judge``: one output line per input row, with the judge's preference or the row's error.
"""

from __future__ import annotations

import argparse
from typing import Any

from critic.cli.common import CHUNK_PAIRS
from critic.cli.files import finish, write_results
from critic.cli.loading import start_file_command
from critic.io.rows import pairs_from_row
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
from critic.judges.each import grouped

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
    judge_groups = grouped(started.judge.compare_each)
    table: list[tuple[str, Any]] = []

    def run(rows: list[Any]) -> list[Any]:
        """Every pair of every row in one judge call; per row, its pairs' (indices, result)."""
        results = judge_groups([[pair for pair, _ in row] for row in rows])
        return [[(indices, one) for (_, indices), one in zip(row, judged, strict=True)]
                for row, judged in zip(rows, results, strict=True)]

    def record(number: int, row: Any, result: Any) -> dict[str, Any]:
        line, judged = _record(number, row, result)
        if args.table:
            table.extend(judged)
        return line

    summary = write_results(args, started.rows, total=started.total, chunk_size=CHUNK_PAIRS,
                            read=lambda row: pairs_from_row(row, columns), run=run, record=record,
                            failure=_first_failure)
    if table:
        print(judge_table(table))
    return finish(summary, quiet=args.quiet)


def _first_failure(result: Any) -> CriticError | None:
    """The row's error, or the first of its pairs' errors (a row fails when any of its pairs does)."""
    if isinstance(result, CriticError):
        return result
    return next((one for _, one in result if isinstance(one, CriticError)), None)


def _record(number: int, row: Any, result: Any) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """A row's output line, and each judged pair's name and result (for the table).

    A row of one pair gets the preference's fields (or ``error``); a row of
    several (RewardBench 2) a ``pairs`` list, one entry per pair with its
    ``chosen`` and ``rejected`` indices.
    """
    line: dict[str, Any] = {"line": number}
    if isinstance(row, dict) and "id" in row:
        line["id"] = row["id"]
    name = str(line.get("id", number))
    if isinstance(result, CriticError) or len(result) == 1:
        one = result if isinstance(result, CriticError) else result[0][1]
        line.update(_fields(one))
        return line, [(name, one)]
    line["pairs"] = [{"chosen": i, "rejected": j, **_fields(one)} for (i, j), one in result]
    return line, [(f"{name}:{i}/{j}", one) for (i, j), one in result]


def _fields(result: Any) -> dict[str, Any]:
    return {"error": cli_wording(str(result))} if isinstance(result, CriticError) else result.to_dict()
