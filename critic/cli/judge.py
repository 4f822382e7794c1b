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
    through_judge,
    write_record,
)
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
from critic.cli.output import judge_table, open_output, progress
from critic.errors import CriticError
from critic.judges.each import chunked

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
    options, source, total, judge = started.options, started.source, started.total, started.judge
    columns = options.columns
    rows = source.rows()
    failures = 0
    table: list[tuple[str, Any]] = []
    with open_output(args.output) as out, progress(total, args.quiet, "judging") as bar:
        for chunk in chunked(rows, CHUNK_PAIRS):
            results = through_judge(chunk, lambda row: pair_from_row(row, columns), judge.compare_each)
            for (number, row), result in zip(chunk, results, strict=True):
                record: dict[str, Any] = {"line": number}
                if isinstance(row, dict) and "id" in row:
                    record["id"] = row["id"]
                if isinstance(result, CriticError):
                    failures += 1
                    record["error"] = str(result)
                else:
                    record.update(result.to_dict())
                if args.table:
                    table.append((str(record.get("id", number)), result))
                write_record(out, record)
            out.flush()
            bar.update(len(chunk))
    if table:
        print(judge_table(table))
    if failures:
        say(f"{failures} line(s) could not be judged; see their 'error' field")
        return EXIT_ROW_ERRORS
    return EXIT_OK
