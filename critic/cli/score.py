"""``critic score``: a reward-model score for every row.
"""

from __future__ import annotations

import argparse
import json
import sys
from itertools import islice
from pathlib import Path
from typing import Any

from critic.backends.base import DEFAULT_MAX_BATCH_SIZE
from critic.cli.common import CHUNK_PAIRS, EXIT_OK, EXIT_ROW_ERRORS, _count_lines, _open_output, _progress, _read_jsonl
from critic.errors import CriticError


def _score_parser(commands: Any) -> None:
    from critic.backends.reward import DEFAULT_REWARD_MODEL

    parser = commands.add_parser(
        "score",
        help="add a reward-model score to every row of a JSONL file of conversations",
        description="Score each row with a reward model and write the row back with a score column. A row "
                    "is a conversation (a 'messages' list ending with the assistant's response) or a prompt "
                    "and a response (with optional 'history' turns before the prompt).",
    )
    parser.add_argument("input", type=Path, help="JSONL file, one row per line ('-' for stdin)")
    parser.add_argument("-o", "--output", type=Path, help="output JSONL (default: stdout)")
    parser.add_argument("--model", default=DEFAULT_REWARD_MODEL,
                        help=f"reward model: hub id or local folder (default: {DEFAULT_REWARD_MODEL})")
    parser.add_argument("--score-field", default="reward", help="name of the added column (default: reward)")
    parser.add_argument("--messages-field", default="messages")
    parser.add_argument("--prompt-field", default="prompt")
    parser.add_argument("--response-field", default="response")
    parser.add_argument("--history-field", default="history")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_MAX_BATCH_SIZE,
                        help=f"conversations per forward pass at most (default: {DEFAULT_MAX_BATCH_SIZE})")
    parser.add_argument("--max-length", type=int, help="longest conversation in tokens (default: the model's context)")
    parser.add_argument("--device", help="cuda, cpu, ... (default: cuda when available)")
    parser.add_argument("--dtype", help="bf16, fp16 or fp32 (default: bf16 on CUDA, fp32 on CPU)")
    parser.add_argument("--trust-remote-code", action="store_true")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run_score)


def run_score(args: argparse.Namespace) -> int:
    from critic.judges.reward import RewardJudge, conversation_from_row

    total = None if str(args.input) == "-" else _count_lines(args.input)  # fails fast, before the model loads
    judge = RewardJudge.from_pretrained(args.model, device=args.device, dtype=args.dtype, batch_size=args.batch_size,
                                        max_length=args.max_length, trust_remote_code=args.trust_remote_code)
    fields = {"messages_field": args.messages_field, "prompt_field": args.prompt_field,
              "response_field": args.response_field, "history_field": args.history_field}
    rows = _read_jsonl(args.input)
    failures = 0
    with _open_output(args.output) as out, _progress(total, args.quiet, "scoring") as bar:
        while chunk := list(islice(rows, max(CHUNK_PAIRS, args.batch_size))):
            conversations: list[Any] = []
            for _, row in chunk:
                try:
                    if isinstance(row, CriticError):
                        raise row
                    conversations.append(conversation_from_row(row, **fields))
                except CriticError as error:
                    conversations.append(error)
            scored = iter(judge.score_each([c for c in conversations if not isinstance(c, CriticError)]))
            for (line_number, row), item in zip(chunk, conversations, strict=True):
                result = item if isinstance(item, CriticError) else next(scored)
                # The row comes back whole with the score added; a row that is not an object cannot.
                record: dict[str, Any] = dict(row) if isinstance(row, dict) else {"line": line_number}
                record[args.score_field] = None if isinstance(result, CriticError) else result
                if isinstance(result, CriticError):
                    failures += 1
                    record["error"] = f"line {line_number}: {result}" if isinstance(row, dict) else str(result)
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
            bar.update(len(chunk))
    if failures:
        print(f"critic: {failures} line(s) could not be scored; see their 'error' field", file=sys.stderr)
        return EXIT_ROW_ERRORS
    return EXIT_OK
