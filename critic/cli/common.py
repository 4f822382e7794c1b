"""What every command shares: model options, reading and writing JSONL, progress bars.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from critic.backends.base import DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_BATCH_TOKENS
from critic.backends.loading import DEFAULT_MODEL, DEMO_ALIAS
from critic.errors import InputError
from critic.templates import DEFAULT_TEMPLATE
from critic.types import MODES

EXIT_OK, EXIT_ROW_ERRORS, EXIT_FAILURE = 0, 1, 2
CHUNK_PAIRS = 32


def _model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"hub id, local folder, .gguf file, or '{DEMO_ALIAS}' (default: {DEFAULT_MODEL})")
    parser.add_argument("--template", default=DEFAULT_TEMPLATE, help=f"built-in name or .jinja path (default: {DEFAULT_TEMPLATE})")
    parser.add_argument("--mode", choices=MODES, default="score", help="how verdicts are read (default: score)")
    parser.add_argument("--no-swap", action="store_true", help="judge one order only (no position-swap debiasing)")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_MAX_BATCH_SIZE,
                        help=f"prompts per forward pass at most (default: {DEFAULT_MAX_BATCH_SIZE})")
    parser.add_argument("--max-batch-tokens", type=int, default=DEFAULT_MAX_BATCH_TOKENS,
                        help=f"padded tokens per forward pass at most (default: {DEFAULT_MAX_BATCH_TOKENS})")
    parser.add_argument("--max-new-tokens", type=int, default=2048, help="generation budget in generate mode")
    parser.add_argument("--max-length", type=int,
                        help="longest prompt in tokens (default: the model's context length)")
    parser.add_argument("--overflow", choices=("error", "truncate"), default="error",
                        help="a prompt over --max-length: fail that pair with a reason (default), or shorten "
                             "both responses in the middle behind a visible marker")
    parser.add_argument("--device", help="cuda, cpu, ... (default: cuda when available)")
    parser.add_argument("--dtype", help="bf16, fp16 or fp32 (default: bf16 on CUDA, fp32 on CPU)")
    parser.add_argument("--trust-remote-code", action="store_true")


def _generative_options(args: argparse.Namespace) -> dict[str, Any]:
    """``Judge.from_pretrained`` keyword arguments from the options of :func:`_model_options`."""
    return {
        "template": args.template,
        "mode": args.mode,
        "swap": not args.no_swap,
        "device": args.device,
        "dtype": args.dtype,
        "batch_size": args.batch_size,
        "max_batch_tokens": args.max_batch_tokens,
        "max_new_tokens": args.max_new_tokens,
        "max_length": args.max_length,
        "overflow": args.overflow,
        "trust_remote_code": args.trust_remote_code,
    }


def _read_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed row or InputError) for every non-blank line."""
    stream = sys.stdin.buffer if str(path) == "-" else _open_input(path)
    with stream:
        for line_number, raw in enumerate(stream, start=1):
            if not raw.strip():
                continue
            try:
                yield line_number, json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as error:
                yield line_number, InputError(f"line {line_number} is not valid UTF-8 ({error.reason} at byte {error.start})")
            except json.JSONDecodeError as error:
                yield line_number, InputError(f"line {line_number} is not valid JSON ({error.msg} at column {error.colno})")


def _open_input(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except OSError as error:
        raise InputError(f"cannot read input file '{path}': {error.strerror}") from error


def _count_lines(path: Path) -> int:
    with _open_input(path) as stream:
        return sum(1 for raw in stream if raw.strip())


class _Stdout:
    def __enter__(self) -> IO[str]:
        return sys.stdout

    def __exit__(self, *exc: object) -> None:
        sys.stdout.flush()


def _open_output(path: Path | None) -> Any:
    if path is None:
        return _Stdout()
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("w", encoding="utf-8")


def _progress(total: int | None, quiet: bool, description: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="pair", desc=description, file=sys.stderr, dynamic_ncols=True,
                disable=quiet or not sys.stderr.isatty())
