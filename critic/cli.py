"""The ``critic`` command. The only module that prints: it parses arguments,
does the file I/O, draws progress bars and chooses exit codes; the library does
the judging.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import IO, Any

from critic.errors import CriticError, InputError
from critic.models import DEFAULT_MODEL, DEMO_ALIAS
from critic.templates import DEFAULT_TEMPLATE, builtin_templates
from critic.types import MODES, Pair

EXIT_OK, EXIT_ROW_ERRORS, EXIT_FAILURE = 0, 1, 2
CHUNK_PAIRS = 32


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        _quiet_transformers()
    try:
        return int(args.run(args))
    except CriticError as error:
        print(f"critic: error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print("critic: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="critic", description="Pairwise preference labels from a judge model.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the library does")
    commands = parser.add_subparsers(dest="command", required=True)

    judge = commands.add_parser("judge", help="judge the pairs of a JSONL file, one output line per input line")
    judge.add_argument("input", type=Path, help="JSONL file with prompt, response_a, response_b per line ('-' for stdin)")
    judge.add_argument("-o", "--output", type=Path, help="output JSONL (default: stdout)")
    _model_options(judge)
    judge.add_argument("--prompt-field", default="prompt")
    judge.add_argument("--response-a-field", default="response_a")
    judge.add_argument("--response-b-field", default="response_b")
    judge.add_argument("--reference-field", default="reference", help="for reference-guided templates")
    judge.add_argument("--quiet", action="store_true", help="no progress bar")
    judge.add_argument("--table", action="store_true", help="also print a table of the results (for small files)")
    judge.set_defaults(run=run_judge)

    prompt = commands.add_parser("prompt", help="show exactly what the model reads for one pair")
    prompt.add_argument("--model", default=DEMO_ALIAS, help="whose tokenizer and chat template (default: demo)")
    prompt.add_argument("--template", default=DEFAULT_TEMPLATE)
    prompt.add_argument("--mode", choices=MODES, default="score")
    prompt.add_argument("--prompt", required=True)
    prompt.add_argument("--response-a", required=True)
    prompt.add_argument("--response-b", required=True)
    prompt.add_argument("--reference")
    prompt.set_defaults(run=run_prompt)

    templates = commands.add_parser("templates", help="list the built-in judge templates")
    templates.set_defaults(run=run_templates)
    return parser


def _model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"hub id, local folder, .gguf file, or '{DEMO_ALIAS}' (default: {DEFAULT_MODEL})")
    parser.add_argument("--template", default=DEFAULT_TEMPLATE, help=f"built-in name or .jinja path (default: {DEFAULT_TEMPLATE})")
    parser.add_argument("--mode", choices=MODES, default="score", help="how verdicts are read (default: score)")
    parser.add_argument("--no-swap", action="store_true", help="judge one order only (no position-swap debiasing)")
    parser.add_argument("--batch-size", type=int, default=16, help="prompts per forward pass at most (default: 16)")
    parser.add_argument("--max-new-tokens", type=int, default=2048, help="generation budget in generate mode")
    parser.add_argument("--device", help="cuda, cpu, ... (default: cuda when available)")
    parser.add_argument("--dtype", help="bf16, fp16 or fp32 (default: bf16 on CUDA, fp32 on CPU)")
    parser.add_argument("--trust-remote-code", action="store_true")


def run_judge(args: argparse.Namespace) -> int:
    from critic.judge import Judge

    judge = Judge.from_pretrained(
        args.model,
        template=args.template,
        mode=args.mode,
        swap=not args.no_swap,
        device=args.device,
        dtype=args.dtype,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        trust_remote_code=args.trust_remote_code,
    )
    fields = {
        "prompt_field": args.prompt_field,
        "response_a_field": args.response_a_field,
        "response_b_field": args.response_b_field,
        "reference_field": args.reference_field,
    }
    rows = _read_jsonl(args.input)
    total = None if str(args.input) == "-" else _count_lines(args.input)
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


def run_prompt(args: argparse.Namespace) -> int:
    from critic import render_prompt

    text = render_prompt(args.prompt, args.response_a, args.response_b, reference=args.reference,
                         tokenizer=args.model, template=args.template, mode=args.mode)
    sys.stdout.write(text + "\n")
    return EXIT_OK


def run_templates(args: argparse.Namespace) -> int:
    from critic.templates import load_template

    for name in builtin_templates():
        template = load_template(name)
        kind = "explanation, then verdict" if template.explanation_first else "verdict only"
        print(f"{name:16} verdicts {'/'.join(template.verdicts):6} {kind}")
    return EXIT_OK


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


if __name__ == "__main__":
    sys.exit(main())
