"""Serving throughput: `critic serve` at 1, 8 and 64 concurrent clients against the in-process batched judge.

Run from the repository root:

    TORCHDYNAMO_DISABLE=1 HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/serve.py --pairs 64
    .venv/bin/python benchmarks/serve.py --fake --pairs 256        # no model: a judge that sleeps per prompt

It judges the first N PandaLM test pairs (../shared/data/pandalm/testset-v1.json)
in-process with ``judge.compare_each(pairs)`` (one call: the batched rate), then
starts the real ``critic serve`` in a subprocess on 127.0.0.1 with the same
judge and sends the same pairs, one pair per request, from C concurrent clients
(closed loop: each sends its next pair when the last is answered). It prints,
per C, pairs/s, the ratio to the in-process rate and the p50/p99 request
latency, checks that every served result equals the in-process one (p_a within
1e-4) and the share of the time the server spent inside judge calls, and ends
with one JSON line. The goal: at 64 clients, >= 0.8 of the
in-process rate (dynamic batching merges the concurrent requests).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "pandalm" / "testset-v1.json"
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TORCHDYNAMO_DISABLE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")  # no de-quantising bar while the demo model loads
STARTUP_S = 600.0


def fake_judge(model: str, **options: Any) -> Any:
    """`--judge-factory benchmarks.serve:fake_judge --model fake:MS`: a judge that sleeps MS ms per prompt."""
    from critic import Judge
    from critic.testing import FakeBackend, letter_output

    per_prompt = float(model.partition(":")[2] or 10) / 1000.0

    class Sleepy(FakeBackend):
        def run(self, requests):  # type: ignore[no-untyped-def]
            time.sleep(per_prompt * len(requests))
            return [self.respond(request) for request in requests]

    return Judge(Sleepy(lambda request: letter_output(0.7 if len(request.pair.response_a) > len(
        request.pair.response_b) else 0.3)), model_name=model, template=options.get("template", "skywork-critic"))


def load_pairs(count: int) -> list[Any]:
    from critic import Pair

    rows = json.loads(DATA.read_text(encoding="utf-8"))
    pairs = []
    for row in rows:
        if all(isinstance(row[key], str) for key in ("instruction", "input", "response1", "response2")):
            prompt = row["instruction"] + (f"\n\n{row['input']}" if row["input"] else "")
            pairs.append(Pair(prompt, row["response1"], row["response2"]))
        if len(pairs) == count:
            break
    return pairs


def start_server(args: argparse.Namespace, model: str, extra: list[str]) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "critic.cli", "serve", "--port", "0", "--model", model, "--quiet",
               "--max-wait-ms", str(args.max_wait_ms), *extra]
    if args.max_batch_pairs:
        command += ["--max-batch-pairs", str(args.max_batch_pairs)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stderr], daemon=True).start()
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline and process.poll() is None:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if " at http://" in line:
            return process, "http://" + line.split(" at http://", 1)[1].split()[0]
        print(line, end="", file=sys.stderr)
    process.kill()
    raise SystemExit("critic serve did not start")


async def run_clients(url: str, pairs: list[Any], clients: int) -> tuple[float, list[float], dict[int, Any]]:
    import httpx

    from critic.wire import pair_object

    todo: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(pairs)):
        todo.put_nowait(index)
    latencies: list[float] = []
    results: dict[int, Any] = {}

    async def client(http: httpx.AsyncClient) -> None:
        while True:
            try:
                index = todo.get_nowait()
            except asyncio.QueueEmpty:
                return
            sent = time.perf_counter()
            response = await http.post("/v1/compare", json={"pairs": [pair_object(pairs[index])]})
            latencies.append(time.perf_counter() - sent)
            response.raise_for_status()
            results[index] = response.json()["results"][0]

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=3600, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        wall = time.perf_counter() - started
    return wall, latencies, results


def judge_seconds(url: str) -> float:
    """The server's total time inside judge calls so far (from /metrics)."""
    import httpx

    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith("critic_batch_seconds_sum"):
            return float(line.split()[-1])
    return 0.0


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--clients", default="1,8,64", help="concurrency levels (default: 1,8,64)")
    parser.add_argument("--fake", action="store_true", help="no model: a judge that sleeps --fake-ms per prompt")
    parser.add_argument("--fake-ms", type=float, default=10.0)
    parser.add_argument("--max-batch-pairs", type=int, help="the server's --max-batch-pairs (default: its own)")
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--threads", type=int, help="torch threads, in-process and in the server")
    args = parser.parse_args()
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    levels = [int(level) for level in args.clients.split(",")]
    pairs = load_pairs(args.pairs)

    if args.fake:
        model, extra = f"fake:{args.fake_ms:g}", ["--judge-factory", "benchmarks.serve:fake_judge"]
        judge = fake_judge(model)
    else:
        import torch

        from critic import Judge
        from critic.options import LoadOptions

        if args.threads:
            torch.set_num_threads(args.threads)
        model, extra = "demo", ["--device", "cpu"]
        judge = Judge.from_pretrained("demo", load=LoadOptions(device="cpu"))
    judge.compare_each(pairs[:2])  # warm-up
    started = time.perf_counter()
    expected = judge.compare_each(pairs)
    in_process = len(pairs) / (time.perf_counter() - started)
    del judge

    process, url = start_server(args, model, extra)
    rows = []
    try:
        asyncio.run(run_clients(url, pairs[:2], 1))  # warm-up
        for clients in levels:
            busy = judge_seconds(url)
            wall, latencies, results = asyncio.run(run_clients(url, pairs, clients))
            busy = judge_seconds(url) - busy
            same = sum(1 for index, result in results.items() if "error" not in result
                       and abs(result["p_a"] - expected[index].p_a) <= 1e-4)
            rows.append({"clients": clients, "pairs_per_s": len(pairs) / wall,
                         "ratio": len(pairs) / wall / in_process, "p50_s": statistics.median(latencies),
                         "p99_s": percentile(latencies, 0.99), "judge_busy": busy / wall,
                         "same_as_in_process": same, "answered": len(results)})
    finally:
        process.terminate()
        process.wait(timeout=120)

    print(f"judge: {model}; {len(pairs)} PandaLM pairs, one pair per request; in-process batched "
          f"compare_each: {in_process:.3f} pairs/s\n")
    print(f"{'clients':>7} {'pairs/s':>9} {'x in-process':>12} {'p50 s':>8} {'p99 s':>8} {'judge busy':>10} "
          f"{'same':>9}")
    for row in rows:
        print(f"{row['clients']:>7} {row['pairs_per_s']:>9.3f} {row['ratio']:>12.2f} {row['p50_s']:>8.3f} "
              f"{row['p99_s']:>8.3f} {row['judge_busy']:>10.2f} {row['same_as_in_process']:>4}/{row['answered']:<4}")
    print(json.dumps({"model": model, "pairs": len(pairs), "in_process_pairs_per_s": in_process, "rows": rows}))


if __name__ == "__main__":
    main()
