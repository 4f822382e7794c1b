"""``critic judge``: one output line per input row, with the judge's preference or the row's error.
"""

from __future__ import annotations

import argparse
from typing import Any

from critic.cli.common import (
    CHUNK_PAIRS,
    EXIT_OK,
    EXIT_ROW_ERRORS,
    say,
    write_record,
)
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
from critic.cli.output import judge_table, open_output, progress
from critic.errors import CriticError
from critic.judges.each import chunked, grouped, judged_in_place, read_each

INPUTS = "JSONL, JSON array, Parquet, CSV, a save_to_disk folder, or a cached hub dataset"


def add_judge_parser(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "judge", parents=parents,
        help="judge the pairs of a file, one output line per input row",
        description="Judge each row's prompt, response_a and response_b (both orders, merged) and write one "
                    "JSON line per input row: its line (row number), id, label, p_a, consistent and orders, "
                    "or an 'error' saying why the row could not be judged. A row of several pairs (RewardBench 2: "
                    "each chosen answer against each rejected one) gets a 'pairs' list, one entry per pair with "
                    "its 'chosen' and 'rejected' indices.",
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
    options, source, total, judge = started.options, started.source, started.total, started.judge
    columns = options.columns
    rows = source.rows()
    failures = 0
    table: list[tuple[str, Any]] = []
    with open_output(args.output) as out, progress(total, args.quiet, "judging") as bar:
        for chunk in chunked(rows, CHUNK_PAIRS):
            shown = read_each([row for _, row in chunk], lambda row: pairs_from_row(row, columns))
            results = judged_in_place(shown, lambda groups: grouped(judge.compare_each)([[p for p, _ in g]
                                                                                          for g in groups]))
            for (number, row), read, result in zip(chunk, shown, results, strict=True):
                record, judged = _record(number, row, read, result)
                failures += any(isinstance(one, CriticError) for _, one in judged)
                if args.table:
                    table.extend(judged)
                write_record(out, record)
            out.flush()
            bar.update(len(chunk))
    if table:
        print(judge_table(table))
    if failures:
        say(f"{failures} line(s) could not be judged; see their 'error' field")
        return EXIT_ROW_ERRORS
    return EXIT_OK


def _record(number: int, row: Any, read: Any, result: Any) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """A row's output line, and each judged pair's name and result (for the table and the failure count).

    A row of one pair gets the preference's fields (or ``error``); a row of
    several (RewardBench 2) a ``pairs`` list, one entry per pair with its
    ``chosen`` and ``rejected`` indices.
    """
    record: dict[str, Any] = {"line": number}
    if isinstance(row, dict) and "id" in row:
        record["id"] = row["id"]
    name = str(record.get("id", number))
    if isinstance(result, CriticError) or len(result) == 1:
        one = result if isinstance(result, CriticError) else result[0]
        record.update({"error": str(one)} if isinstance(one, CriticError) else one.to_dict())
        return record, [(name, one)]
    record["pairs"] = [{"chosen": i, "rejected": j, **({"error": str(one)} if isinstance(one, CriticError)
                                                        else one.to_dict())}
                       for (_, (i, j)), one in zip(read, result, strict=True)]
    return record, [(f"{name}:{i}/{j}", one) for (_, (i, j)), one in zip(read, result, strict=True)]
