"""Issue 10's user-mistake reproductions, run against one checkout; prints a Markdown table.

    python benchmarks/reproductions.py [CHECKOUT]    # default: this checkout

Each case runs `python -m critic.cli ...` in a subprocess with the checkout first
on PYTHONPATH (so an older commit's checkout can be compared with the same
interpreter), and records the exit code, whether a traceback reached the user,
the seconds it took and the last line the user saw.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LABEL_SNIPPET = r'''
import json, sys
lab, path = sys.argv[1], sys.argv[2]
row = {"prompt": "q", "response_a": "a", "response_b": "b", "label": lab}
try:
    from critic.data import prepare_row
except ImportError:
    from critic.io.rows import prepare_row
try:
    c = prepare_row(row); f = "A" if c.pair.response_a == "a" else "B"
except Exception as e:
    f = "rejected: " + str(e)[:70]
try:
    from critic.evaluation import load_labelled_pairs
except ImportError:
    from critic.eval.pairs import load_labelled_pairs
open(path, "w").write(json.dumps(row) + "\n")
try:
    loaded = load_labelled_pairs(path)
    e = loaded.pairs[0].label if loaded.pairs else "skipped: " + str(loaded.skipped[0])[:70]
except Exception as err:
    e = "error: " + str(err)[:70]
print(f"filter reads {f}; eval reads {e}")
'''


def inputs(folder: Path) -> None:
    pair = {"prompt": "What is 2+2?", "response_a": "4", "response_b": "5"}
    (folder / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + json.dumps(pair).encode() + b"\n")
    (folder / "array.json").write_text(json.dumps([pair, dict(pair, prompt="What is 3+3?")], indent=2))
    bad = '{"prompt": "What is 2+2? \\ud800", "response_a": "4", "response_b": "5"%s}\n'
    good = '{"prompt": "What is 3+3?", "response_a": "6", "response_b": "7"%s}\n'
    (folder / "surrogate.jsonl").write_text(bad % "" + good % "")
    (folder / "surrogate_label.jsonl").write_text(bad % ', "label": "A"' + good % ', "label": "A"')
    chosen = '{"prompt": "What is %s? %s", "chosen": "%s", "rejected": "%s"}\n'
    (folder / "surrogate_pc.jsonl").write_text(chosen % ("2+2", "\\ud800", 4, 5) + chosen % ("3+3", "", 6, 7))
    (folder / "nested.jsonl").write_text("[" * 100000 + "]" * 100000 + "\n" + json.dumps(pair) + "\n")
    (folder / "ok.jsonl").write_text(json.dumps(dict(pair, label="A")) + "\n")
    (folder / "include.jinja").write_text('{% include "other.jinja" %}{%- block user -%}{{ prompt }}{% endblock %}')
    (folder / "range.jinja").write_text(
        "{%- block user -%}{{ prompt }}{% for i in range(100000000) %}x{% endfor %}{% endblock %}")


def cases(out: str) -> list[tuple[str, list[str]]]:
    demo = ["--model", "demo"]
    return [
        ("judge: UTF-8 BOM on line 1", ["judge", "bom.jsonl", *demo, "-o", f"{out}/bom.jsonl"]),
        ("judge: a JSON array input", ["judge", "array.json", *demo, "-o", f"{out}/arr.jsonl"]),
        ("filter: missing input file", ["filter", "/nonexistent.jsonl", *demo, "-o", f"{out}/missing"]),
        ("eval: unwritable -o", ["eval", "ok.jsonl", *demo, "-o", "/proc/forbidden", "--no-figure"]),
        ("judge: lone surrogate", ["judge", "surrogate.jsonl", *demo, "-o", f"{out}/sur.jsonl"]),
        ("filter: lone surrogate", ["filter", "surrogate_pc.jsonl", *demo, "-o", f"{out}/sur-filter"]),
        ("eval: lone surrogate", ["eval", "surrogate_label.jsonl", *demo, "-o", f"{out}/sur-eval", "--no-figure"]),
        ("judge --device cuda (no CUDA)", ["judge", "ok.jsonl", *demo, "--device", "cuda", "-o", f"{out}/d1.jsonl"]),
        ("judge --device tpu", ["judge", "ok.jsonl", *demo, "--device", "tpu", "-o", f"{out}/d2.jsonl"]),
        ("judge --batch-size 0", ["judge", "ok.jsonl", *demo, "--batch-size", "0", "-o", f"{out}/b0.jsonl"]),
        ("judge --max-batch-tokens 0", ["judge", "ok.jsonl", *demo, "--max-batch-tokens", "0",
                                        "-o", f"{out}/t0.jsonl"]),
        ("template with {% include %}", ["judge", "ok.jsonl", *demo, "--template", "include.jinja",
                                         "-o", f"{out}/inc.jsonl"]),
        ("template with range(100000000)", ["judge", "ok.jsonl", *demo, "--template", "range.jinja",
                                            "-o", f"{out}/rng.jsonl"]),
        ("judge: unwritable -o", ["judge", "ok.jsonl", *demo, "-o", "/proc/forbidden/x.jsonl"]),
        ("judge: -o is a folder", ["judge", "ok.jsonl", *demo, "-o", out]),
        ("judge: deeply nested JSON line", ["judge", "nested.jsonl", *demo, "-o", f"{out}/nest.jsonl"]),
        ("critic --version", ["--version"]),
        ("-v after the subcommand", ["templates", "-v"]),
    ]


def main() -> None:
    checkout = str(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parents[1]).resolve())
    env = dict(os.environ, PYTHONPATH=checkout, TORCHDYNAMO_DISABLE="1", HF_HUB_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        inputs(folder)
        out = str(folder / "out")
        os.makedirs(out)
        print("| case | exit | traceback | seconds | what the user sees (last stderr line) |")
        print("|---|---:|:---:|---:|---|")
        for name, args in cases(out):
            started = time.monotonic()
            done = subprocess.run([sys.executable, "-m", "critic.cli", *args], cwd=folder, env=env,
                                  capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
            seconds = time.monotonic() - started
            lines = [line for line in done.stderr.strip().splitlines()
                     if line.strip() and not line.startswith(("WARNING", "  warnings.warn", "/"))]
            shown = (lines[-1] if lines else (done.stdout.strip().splitlines() or [""])[0]).replace("|", "\\|")[:150]
            if "-o" in args and args[args.index("-o") + 1].endswith(".jsonl"):
                path = Path(args[args.index("-o") + 1])
                if path.exists():
                    records = path.read_text().splitlines()
                    errors = sum('"error"' in record for record in records)
                    shown += f" [output: {len(records)} lines, {errors} with error]"
            traceback = "yes" if "Traceback" in done.stderr else "no"
            print(f"| {name} | {done.returncode} | {traceback} | {seconds:.1f} | {shown} |", flush=True)
        for label in ("1", "response1", "draw", "none"):
            done = subprocess.run([sys.executable, "-c", LABEL_SNIPPET, label, str(folder / "label.jsonl")],
                                  cwd=folder, env=env, capture_output=True, text=True)
            seen = done.stdout.strip() or done.stderr.strip().splitlines()[-1]
            print(f"| label {label!r} | | | | {seen[:160]} |")
        done = subprocess.run([sys.executable, "-c", "import critic; a = set(critic.__all__); print(sorted(x for x in "
                               "['merge_orders', 'find_verdicts', 'VerdictRequest', 'BackendOutput', 'DEMO_ALIAS'] "
                               "if x in a), 'evaluate' in a, 'load_labelled_pairs' in a)"],
                              cwd=folder, env=env, capture_output=True, text=True)
        print(f"| front door: internals exported, evaluate, load_labelled_pairs | | | | {done.stdout.strip()} |")


if __name__ == "__main__":
    main()
