"""``critic judge``: one output line per input pair.
"""

from __future__ import annotations

import argparse
import json
import sys
from itertools import islice
from typing import Any

from critic.cli.common import (
    CHUNK_PAIRS,
    EXIT_OK,
    EXIT_ROW_ERRORS,
    _count_lines,
    _generative_options,
    _open_output,
    _progress,
    _read_jsonl,
)
from critic.errors import CriticError
from critic.types import Pair


def run_judge(args: argparse.Namespace) -> int:
    from critic.judges.generative import Judge

    total = None if str(args.input) == "-" else _count_lines(args.input)  # fails fast, before the model loads
    judge = Judge.from_pretrained(args.model, **_generative_options(args))
    fields = {
        "prompt_field": args.prompt_field,
        "response_a_field": args.response_a_field,
        "response_b_field": args.response_b_field,
        "reference_field": args.reference_field,
    }
    rows = _read_jsonl(args.input)
    failures = 0
    table: list[tuple[str, str]] = []
    with _open_output(args.output) as out, _progress(total, args.quiet, "judging") as bar:
        while chunk := list(islice(rows, CHUNK_PAIRS)):
            parsed: list[tuple[int, Any, Pair | CriticError]] = []
            for line_number, row in chunk:
                try:
                    if isinstance(row, CriticError):
                        raise row
                    parsed.append((line_number, row, Pair.from_mapping(row, **fields)))
                except CriticError as error:
                    parsed.append((line_number, row, error))
            pairs = [item for _, _, item in parsed if isinstance(item, Pair)]
            results = iter(judge.compare_each(pairs))
            for line_number, row, item in parsed:
                result = item if isinstance(item, CriticError) else next(results)
                record: dict[str, Any] = {"line": line_number}
                if isinstance(row, dict) and "id" in row:
                    record["id"] = row["id"]
                if isinstance(result, CriticError):
                    failures += 1
                    record["error"] = str(result)
                else:
                    record.update(result.to_dict())
                if args.table:
                    table.append((str(record.get("id", line_number)), _table_cells(result)))
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
            bar.update(len(chunk))
    if table:
        print(f"{'pair':12} {'label':5} {'p_a':>6}  {'consistent':10} per order (verdict as shown, P(response_a better))")
        for name, cells in table:
            print(f"{name[:12]:12} {cells}")
    if failures:
        print(f"critic: {failures} line(s) could not be judged; see their 'error' field", file=sys.stderr)
        return EXIT_ROW_ERRORS
    return EXIT_OK


def _table_cells(result: Any) -> str:
    if isinstance(result, CriticError):
        return f"error: {result}"
    orders = "  ".join(f"{o.order}: [[{o.verdict}]] {o.p_a:.3f}" for o in result.orders)
    return f"{result.label:5} {result.p_a:6.3f}  {str(result.consistent):10} {orders}"
