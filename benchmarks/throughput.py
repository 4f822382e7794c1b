"""Judging throughput: critic against the model card's procedure, plain outlines and the hardware limit.

Run from the repository root (see benchmarks/README.md):

    .venv/bin/python benchmarks/throughput.py --pairs 64 --threads 2

It judges the first N PandaLM test pairs (../shared/data/pandalm/testset-v1.json)
in both orders with the skywork-critic template through the demo model, times
each way of doing it in the same process (each warmed up first), and prints a
table and one JSON line. Every row gives pairs per second and ``critic/row``:
critic's score-mode rate divided by that row's rate (above 1: critic is faster;
against the limit row: the share of the limit critic reaches).

The vLLM rows (``--vllm``, or named in ``--only``) time vLLM alone (the same
token ids straight into ``vllm.LLM.generate``, no critic code), critic on
in-process vLLM and critic over ``vllm serve`` (the server backend, a server
started here with critic's launcher and the in-process engine's settings), in
fp32 and bf16, each with its prefix cache emptied before every run; every vLLM
engine binds its threads alike (critic's choice, ``_vllm_engine.thread_binding``,
unless ``VLLM_CPU_OMP_THREADS_BIND`` is set). The bf16 rows also report, against
fp32 on the same backend, the share of orders whose verdict letter agrees and
the largest probability difference. ``--only`` picks rows for a short run
(``--only critic vllm vllm-alone --pairs 8``).

On the CPU the run also measures this machine's bf16 matrix-multiply rate and
reports the bf16 limit: the unique tokens x 2 x the model's non-embedding
parameters at that rate, and critic's fastest CPU row as a share of it.

``--memory-pairs 1000`` instead judges that many pairs with critic alone and
reports peak memory against the model's size. ``--gpu-8b-shape`` swaps the
demo model for a random bf16 model of Llama-3.1-8B's shape on CUDA.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "pandalm" / "testset-v1.json"
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import psutil  # noqa: E402
import torch  # noqa: E402

from critic import Judge, Pair, VerdictError, parse_verdict  # noqa: E402
from critic.backends._batching import common_prefix_length, find_families, plan_batches  # noqa: E402
from critic.backends._overflow import pair_key  # noqa: E402
from critic.backends.base import VerdictRequest  # noqa: E402
from critic.backends.transformers import TransformersBackend  # noqa: E402
from critic.options import BatchLimits, LoadOptions  # noqa: E402
from critic.templates import load_template  # noqa: E402

TEMPLATE = load_template("skywork-critic")
VERDICTS = ("[[A]]", "[[B]]")
LLAMA_31_8B = dict(  # public config values of meta-llama/Llama-3.1-8B
    hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
    num_key_value_heads=8, max_position_embeddings=131072, rope_theta=500000.0, rms_norm_eps=1e-5,
    vocab_size=128256, tie_word_embeddings=False,
    rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                  "original_max_position_embeddings": 8192},
)


# --- workload -------------------------------------------------------------------------------


def load_pairs(count: int, *, pad_to: int = 0, tokenizer: Any = None) -> tuple[list[Pair], int]:
    """The first ``count`` PandaLM pairs (cycled when more are asked than the file holds).

    The prompt is the instruction plus its input when present. Six responses in
    the file are JSON booleans; they become their text. ``pad_to`` repeats both
    responses until a prompt reaches about that many tokens (GPU runs).
    """
    if not DATA.exists():
        sys.exit(f"{DATA} not found: the benchmark needs ../shared beside the checkout")
    rows = json.loads(DATA.read_text(encoding="utf-8"))
    pairs, coerced = [], 0
    for number in range(count):
        row = rows[number % len(rows)]
        values = [row["instruction"], row["input"], row["response1"], row["response2"]]
        coerced += sum(not isinstance(value, str) for value in values)
        instruction, extra, first, second = (str(value) for value in values)
        prompt = instruction + (f"\n\n{extra}" if extra else "")
        if pad_to and tokenizer is not None:
            base_a, base_b = first, second
            while _prompt_tokens(tokenizer, Pair(prompt, first, second)) < pad_to:
                first, second = f"{first}\n{base_a}", f"{second}\n{base_b}"
        pairs.append(Pair(prompt, first, second))
    return pairs, coerced


def _prompt_tokens(tokenizer: Any, pair: Pair) -> int:
    return len(tokenizer.apply_chat_template(TEMPLATE.render(pair), tokenize=True, add_generation_prompt=True,
                                             return_dict=True)["input_ids"])


def conversations(pairs: Sequence[Pair]) -> list[list[dict[str, str]]]:
    """The judge prompt of each pair in both orders, as the model card sends it: one user message."""
    return [[dict(m) for m in TEMPLATE.render(shown)] for pair in pairs for shown in (pair, pair.swapped())]


@dataclass
class TokenCounts:
    raw: int  # every prompt critic reads, both orders, no padding
    unique: int  # each pair's two orders with their shared prefix once: the limit row's tokens
    unique_rows: int  # what critic's rows hold: a pair that repeats an earlier one shares its prefix too
    padded: int  # what critic's batches hold, padding included
    fixed_padded: int  # what fixed-size batches in data order hold (rows 2 and 3)
    median_prompt: float
    rows: list[list[int]] = field(repr=False, default_factory=list)  # the unique tokens, one list per pair


def count_tokens(backend: TransformersBackend, pairs: Sequence[Pair], batch_size: int) -> TokenCounts:
    requests = [VerdictRequest(shown, TEMPLATE, "score") for pair in pairs for shown in (pair, pair.swapped())]
    sequences = [backend.prompt_ids(request) for request in requests]
    families = find_families(sequences, [pair_key(r) for r in requests], max_members=4)
    widths = [family.width(sequences) for family in families]
    padded = 0
    for batch in plan_batches(widths, [len(f.members) for f in families],
                              max_prompts=backend.limits.max_batch_size, max_tokens=backend.limits.max_batch_tokens):
        padded += len(batch) * max(widths[i] for i in batch)
    lengths = [len(ids) for ids in sequences]
    per_pair = [a + b[common_prefix_length(a, b):] for a, b in zip(sequences[::2], sequences[1::2], strict=True)]
    fixed = sum(len(lengths[i:i + batch_size]) * max(lengths[i:i + batch_size])
                for i in range(0, len(lengths), batch_size))
    return TokenCounts(sum(lengths), sum(map(len, per_pair)), sum(widths), padded, fixed, statistics.median(lengths),
                       per_pair)


# --- measuring ------------------------------------------------------------------------------


class PeakMemory:
    """Peak resident memory of this process while a block runs (sampled every 10 ms)."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self) -> PeakMemory:
        self.peak = self.process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


@dataclass
class Result:
    name: str
    seconds: list[float] = field(default_factory=list)
    peak_rss: int = 0
    unparseable: int | None = None
    note: str = ""

    @property
    def best(self) -> float:
        return min(self.seconds)


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(result: Result, work: Callable[[], int | None]) -> None:
    gc.collect()
    with PeakMemory() as memory:
        synchronize()
        start = time.perf_counter()
        unparseable = work()
        synchronize()
        result.seconds.append(time.perf_counter() - start)
    result.peak_rss = max(result.peak_rss, memory.peak)
    if unparseable is not None:
        result.unparseable = unparseable


# --- the ways of judging --------------------------------------------------------------------


def count_unparseable(texts: Sequence[str]) -> int:
    bad = 0
    for text in texts:
        try:
            parse_verdict(text, allow_tie=False)
        except VerdictError:
            bad += 1
    return bad


def card_one_at_a_time(model: Any, tokenizer: Any, convs: Sequence[list[dict[str, str]]], max_new_tokens: int) -> int:
    """The model card's procedure: one prompt, greedy generate, decode, then parse."""
    texts = []
    for conversation in convs:
        inputs = tokenizer.apply_chat_template(conversation, tokenize=True, add_generation_prompt=True,
                                               return_dict=True, return_tensors="pt").to(model.device)
        with torch.inference_mode():
            output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                    pad_token_id=tokenizer.pad_token_id)
        texts.append(tokenizer.decode(output[0][inputs["input_ids"].shape[1]:], skip_special_tokens=True))
    return count_unparseable(texts)


def card_batched(model: Any, tokenizer: Any, convs: Sequence[list[dict[str, str]]], max_new_tokens: int,
                 batch_size: int) -> int:
    """The same, in fixed-size batches (data order) with left padding."""
    tokenizer.padding_side = "left"
    texts = []
    for start in range(0, len(convs), batch_size):
        inputs = tokenizer.apply_chat_template(list(convs[start:start + batch_size]), tokenize=True,
                                               add_generation_prompt=True, padding=True, return_dict=True,
                                               return_tensors="pt").to(model.device)
        with torch.inference_mode():
            output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                    pad_token_id=tokenizer.pad_token_id)
        width = inputs["input_ids"].shape[1]
        texts += tokenizer.batch_decode(output[:, width:], skip_special_tokens=True)
    return count_unparseable(texts)


def outlines_generator(model: Any, tokenizer: Any) -> Any:
    import outlines

    return outlines.Generator(outlines.from_transformers(model, tokenizer), Literal[VERDICTS])  # type: ignore[valid-type]


def outlines_batched(
    generator: Any, convs: Sequence[list[dict[str, str]]], max_new_tokens: int, batch_size: int
) -> int:
    """outlines as its documentation shows: a generator constrained to the two verdicts, fed Chat inputs in batches."""
    from outlines.inputs import Chat

    texts: list[str] = []
    for start in range(0, len(convs), batch_size):
        texts += generator.batch([Chat(c) for c in convs[start:start + batch_size]], max_new_tokens=max_new_tokens)
    return count_unparseable(texts)


# The judgments of each critic row's latest run, for the bf16-against-fp32 comparison.
JUDGED: dict[str, list[Any]] = {}


def critic_judge(backend: Any, pairs: Sequence[Pair], mode: str, row: str = "") -> int:
    results = Judge(backend, mode=mode).compare_each(pairs)  # type: ignore[arg-type]
    if row:
        JUDGED[row] = results
    return sum(isinstance(result, Exception) for result in results)


def vllm_alone(engine: Any, prompts: Sequence[Sequence[int]], letters: Sequence[int]) -> None:
    """vLLM with no critic code: the same token ids, one step, the letters' log-probabilities."""
    from vllm import SamplingParams, TokensPrompt

    params = SamplingParams(max_tokens=1, temperature=0.0, logprob_token_ids=list(letters), detokenize=False)
    engine.generate([TokensPrompt(prompt_token_ids=list(ids)) for ids in prompts], params, use_tqdm=False)


def agreement(fp32: Sequence[Any], other: Sequence[Any]) -> dict[str, Any]:
    """Share of orders whose verdict letter agrees, and the largest probability difference (p_a, p_b)."""
    same = total = 0
    largest = 0.0
    for left, right in zip(fp32, other, strict=True):
        if isinstance(left, Exception) or isinstance(right, Exception):
            continue
        for a, b in zip(left.orders, right.orders, strict=True):
            total += 1
            same += a.verdict == b.verdict
            largest = max(largest, abs(a.p_a - b.p_a), abs(a.p_b - b.p_b))
    return {"orders": total, "verdicts_agree": round(same / total, 4) if total else None,
            "max_prob_diff": round(largest, 6)}


def bare_limit(model: Any, rows: Sequence[Sequence[int]], rows_per_pass: int) -> None:
    """The limit: one bare forward pass over exactly the unique tokens (no padding, no mask, no cache).

    Each pair's unique tokens (its two orders, the shared prefix once) are laid
    end to end and cut into rows as wide as the average pair, ``rows_per_pass``
    rows per pass (a pair per row, as in critic's batches): the workload's
    tokens in critic's shape, with nothing else.
    """
    stream = [token for row in rows for token in row]
    width = max(1, round(len(stream) / len(rows)))
    chunks = [stream[i:i + width] for i in range(0, len(stream), width)]
    with torch.inference_mode():
        for start in range(0, len(chunks), rows_per_pass):
            group = chunks[start:start + rows_per_pass]
            same = [chunk for chunk in group if len(chunk) == width]
            for batch in ([same] if same else []) + [[chunk] for chunk in group if len(chunk) != width]:
                ids = torch.tensor(batch, device=model.device)
                model(input_ids=ids, use_cache=False, logits_to_keep=1)


# --- main -----------------------------------------------------------------------------------


def build_model(args: argparse.Namespace) -> TransformersBackend:
    if not args.gpu_8b_shape:
        return TransformersBackend.from_pretrained("demo", load=LoadOptions(device=args.device or "cpu"),
                                                   limits=BatchLimits(max_batch_size=args.batch_size))
    from transformers import LlamaConfig, LlamaForCausalLM

    from critic.backends.loading import load_tokenizer, resolve_model

    device = args.device or "cuda"
    if device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("--gpu-8b-shape needs a CUDA GPU (none is visible); GPU figures stay 'not measured'")
    tokenizer = load_tokenizer(resolve_model("demo"))  # its ids fit the 8B vocabulary
    shape = dict(LLAMA_31_8B, num_hidden_layers=args.layers or LLAMA_31_8B["num_hidden_layers"])
    config = LlamaConfig(**shape, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, attn_implementation="sdpa")
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)  # built in bf16 on the device: no fp32 copy of 8B weights first
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config).eval()
    finally:
        torch.set_default_dtype(default)
    return TransformersBackend(model, tokenizer, limits=BatchLimits(max_batch_size=args.batch_size),
                               name="random Llama-3.1-8B shape")


def matmul_rate(device: str) -> float:
    """Measured bf16 matrix-multiply rate of the GPU in FLOP/s (8192-square products)."""
    a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    synchronize()
    start, repeats = time.perf_counter(), 20
    for _ in range(repeats):
        a @ b
    synchronize()
    return 2 * 8192**3 * repeats / (time.perf_counter() - start)


def memory_run(args: argparse.Namespace) -> None:
    """Judge many pairs with critic alone; report peak memory against the model's size."""
    process = psutil.Process()
    before_load = process.memory_info().rss
    backend = build_model(args)
    model_bytes = sum(t.numel() * t.element_size() for t in [*backend.model.parameters(), *backend.model.buffers()])
    after_load = process.memory_info().rss
    pairs, coerced = load_pairs(args.memory_pairs)
    start = time.perf_counter()
    with PeakMemory() as memory:
        failures = critic_judge(backend, pairs, "score")
    seconds = time.perf_counter() - start
    gib = 1 << 30
    report = {
        "memory_pairs": len(pairs), "coerced_fields": coerced, "failed_pairs": failures, "seconds": round(seconds, 1),
        "model_bytes": model_bytes, "rss_before_load": before_load, "rss_after_load": after_load,
        "peak_rss": memory.peak, "peak_over_model_plus_1gib": memory.peak - (model_bytes + gib),
        "within_model_plus_1gib": memory.peak <= model_bytes + gib,
        "judging_growth_over_loaded": memory.peak - after_load,
    }
    if torch.cuda.is_available() and backend.model.device.type == "cuda":
        report["cuda_peak_allocated"] = torch.cuda.max_memory_allocated()
    mb = 1 << 20
    print(f"judged {len(pairs)} pairs in {seconds:.0f} s ({failures} failed); model {model_bytes / mb:.0f} MiB")
    print(f"RSS before load {before_load / mb:.0f} MiB, after load {after_load / mb:.0f} MiB, "
          f"peak while judging {memory.peak / mb:.0f} MiB (model + 1 GiB = {(model_bytes + gib) / mb:.0f} MiB): "
          f"{'within' if report['within_model_plus_1gib'] else 'OVER'}")
    print(json.dumps(report))


BASE_ROWS = ("card", "card-batched", "outlines", "critic", "limit", "constrained", "masked")
VLLM_ROWS = ("critic-bf16", "vllm-alone", "vllm", "server", "vllm-alone-bf16", "vllm-bf16", "server-bf16")
ROWS = BASE_ROWS + VLLM_ROWS
CRITIC_ROWS = ("critic", "constrained", "masked", "critic-bf16", "vllm", "vllm-bf16", "server", "server-bf16")
# The CPU matrix product whose bf16 rate sets the limit: the demo model's MLP shape, 2048 tokens at a time.
CPU_MATMUL_SHAPE = (2048, 576, 1536)


def vllm_backend(args: argparse.Namespace, dtype: str) -> Any:
    """critic's vLLM backend on the demo model (its engine also serves the vLLM-alone row)."""
    from critic.backends.vllm import VLLMBackend

    return VLLMBackend.from_pretrained("demo", load=LoadOptions(device=args.device or "cpu", dtype=dtype),
                                       limits=BatchLimits(max_batch_size=args.batch_size))


def vllm_server(args: argparse.Namespace, dtype: str, log_folder: Path) -> Any:
    """``vllm serve`` of the demo model (critic's launcher) with the in-process engine's settings, started."""
    from critic.backends._vllm_engine import CPU_KV_CACHE_GIB, ENGINE_SEED
    from critic.backends.vllm_serve import VllmServer

    limits = BatchLimits(max_batch_size=args.batch_size)
    options = ["--dtype", {"fp32": "float32", "bf16": "bfloat16"}[dtype], "--enforce-eager",
               "--kv-cache-memory-bytes", str(CPU_KV_CACHE_GIB * 2**30), "--seed", str(ENGINE_SEED),
               "--enable-prefix-caching", "--max-num-seqs", str(limits.max_batch_size),
               "--max-num-batched-tokens", str(max(limits.max_batch_tokens, limits.max_batch_size))]
    # /reset_prefix_cache (emptied before every timed run) is a development endpoint.
    environment = {**os.environ, "VLLM_SERVER_DEV_MODE": "1"}
    return VllmServer("demo", log_path=log_folder / f"vllm-serve-{dtype}.log", args=options,
                      environment=environment).start()


def server_backend(args: argparse.Namespace, url: str) -> Any:
    """critic's server backend in front of ``url``."""
    from critic.backends.server import ServerBackend
    from critic.options import ServerOptions

    server = ServerOptions(url, max_concurrency=args.server_concurrency)
    return ServerBackend.from_pretrained("demo", load=LoadOptions(backend="server", server=server),
                                         limits=BatchLimits(max_batch_size=args.batch_size))


def cpu_bf16_rate(threads: int) -> float:
    """This machine's bf16 matrix-multiply rate on ``threads`` torch threads, in FLOP/s (best of 5 timings)."""
    rows, inner, cols = CPU_MATMUL_SHAPE
    a = torch.randn(rows, inner, dtype=torch.bfloat16)
    b = torch.randn(inner, cols, dtype=torch.bfloat16)
    torch.set_num_threads(threads)
    best = float("inf")
    for _ in range(5):
        start, repeats = time.perf_counter(), 20
        for _ in range(repeats):
            a @ b
        best = min(best, (time.perf_counter() - start) / repeats)
    return 2 * rows * inner * cols / best


def non_embedding_parameters(model: Any) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if "embed_tokens" not in n and "lm_head" not in n)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=64, help="first N PandaLM test pairs (default 64)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--batch-size", type=int, default=16,
                        help="prompts per batch, for every batched row (default 16)")
    parser.add_argument("--max-new-tokens", type=int, default=8, help="generation cap of rows 1-3 (default 8)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed runs per row, interleaved, the best reported (row 1 runs once); default 3")
    parser.add_argument("--skip", nargs="*", default=[],
                        help="rows to leave out: card card-batched outlines constrained masked")
    parser.add_argument("--only", nargs="*", default=[],
                        help="run only these rows (a short run), e.g. critic vllm vllm-alone; see ROWS")
    parser.add_argument("--vllm", action="store_true",
                        help="add the vLLM rows (vllm-alone, vllm, server, and their bf16 twins) and critic-bf16")
    parser.add_argument("--server-concurrency", type=int, default=16,
                        help="the server rows' --max-concurrency (default 16, the server backend's default)")
    parser.add_argument("--device", default=None, help="cpu (default) or cuda")
    parser.add_argument("--memory-pairs", type=int, default=0,
                        help="instead: judge this many pairs, report peak memory")
    parser.add_argument("--gpu-8b-shape", action="store_true", help="random bf16 Llama-3.1-8B-shaped model on CUDA")
    # a smaller 8B-shaped model, for smoke tests
    parser.add_argument("--layers", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--pad-pairs-to", type=int, default=0,
                        help="lengthen responses to about this many prompt tokens")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.memory_pairs:
        memory_run(args)
        return

    load_start = time.perf_counter()
    backend = build_model(args)
    load_seconds = time.perf_counter() - load_start
    model, tokenizer = backend.model, backend.tokenizer
    pad_to = args.pad_pairs_to or (1000 if args.gpu_8b_shape else 0)
    pairs, coerced = load_pairs(args.pairs, pad_to=pad_to, tokenizer=tokenizer)
    warm_pairs = pairs[:2]
    convs, warm_convs = conversations(pairs), conversations(warm_pairs)
    tokens = count_tokens(backend, pairs, args.batch_size)
    warm_rows = count_tokens(backend, warm_pairs, args.batch_size).rows
    rows_per_pass = max(1, args.batch_size // 2)
    wanted = set(args.only) or set(BASE_ROWS) | (set(VLLM_ROWS) if args.vllm else set())
    generator = outlines_generator(model, tokenizer) if "outlines" in wanted - set(args.skip) else None
    masked = TransformersBackend(model, tokenizer, limits=backend.limits, name=backend.name)
    masked.tree_kernel = False

    variants: dict[str, tuple[str, Callable[[Sequence[Pair], Sequence[Any]], int | None]]] = {
        "card": ("1. model card: one prompt at a time, generate + parse",
                 lambda ps, cs: card_one_at_a_time(model, tokenizer, cs, args.max_new_tokens)),
        "card-batched": (f"2. model card, batched (left padding, {args.batch_size}/batch)",
                         lambda ps, cs: card_batched(model, tokenizer, cs, args.max_new_tokens, args.batch_size)),
        "outlines": (f"3. outlines Generator(Literal), .batch of {args.batch_size} Chat inputs",
                     lambda ps, cs: outlines_batched(generator, cs, args.max_new_tokens, args.batch_size)),
        # critic and the limit run back to back, so that both see the same load on a shared machine.
        "critic": ("4. critic score", lambda ps, cs: critic_judge(backend, ps, "score", "critic")),
        "limit": ("5. limit: bare forward over unique tokens",
                  lambda ps, cs: bare_limit(model, tokens.rows if ps is pairs else warm_rows, rows_per_pass)),
        "constrained": ("4b. critic constrained", lambda ps, cs: critic_judge(backend, ps, "constrained")),
        # The tree attention's contribution: the same engine with one masked sdpa call per layer.
        "masked": ("4c. critic score, masked attention", lambda ps, cs: critic_judge(masked, ps, "score")),
    }
    unknown = wanted - set(ROWS)
    if unknown:
        sys.exit(f"unknown rows {sorted(unknown)}; the rows are {', '.join(ROWS)}")
    vllm_rows = wanted & set(VLLM_ROWS)
    if "critic-bf16" in wanted:
        bf16 = TransformersBackend.from_pretrained("demo", load=LoadOptions(device=args.device or "cpu", dtype="bf16"),
                                                   limits=backend.limits)
        variants["critic-bf16"] = ("4d. critic score, bf16",
                                   lambda ps, cs: critic_judge(bf16, ps, "score", "critic-bf16"))
    prompts = [backend.prompt_ids(VerdictRequest(shown, TEMPLATE, "score"))
               for pair in pairs for shown in (pair, pair.swapped())]
    warm_prompts = prompts[:2 * len(warm_pairs)]
    engines: list[Any] = []  # vLLM engines: their prefix caches are emptied before every timed run
    servers: list[Any] = []  # the same for `vllm serve` processes (POST /reset_prefix_cache)
    for dtype, suffix in (("fp32", ""), ("bf16", "-bf16")):
        if f"server{suffix}" in vllm_rows:
            started = vllm_server(args, dtype, ROOT / "out" / "benchmarks")
            servers.append(started)
            client = server_backend(args, started.base_url)
            variants[f"server{suffix}"] = (
                f"7{'d' if suffix else 'c'}. critic score over vllm serve, {dtype}",
                lambda ps, cs, client=client, row=f"server{suffix}": critic_judge(client, ps, "score", row))
        if not vllm_rows & {f"vllm{suffix}", f"vllm-alone{suffix}"}:
            continue
        served = vllm_backend(args, dtype)
        letters = [served.verdict_tokens.letters[letter] for letter in ("A", "B")]
        variants[f"vllm-alone{suffix}"] = (
            f"6{'b' if suffix else ''}. vLLM alone, {dtype} (same token ids, no critic code)",
            lambda ps, cs, engine=served.engine, letters=letters: vllm_alone(
                engine, prompts if ps is pairs else warm_prompts, letters))
        variants[f"vllm{suffix}"] = (
            f"7{'b' if suffix else ''}. critic score on vLLM, {dtype}",
            lambda ps, cs, served=served, row=f"vllm{suffix}": critic_judge(served, ps, "score", row))
        engines.append(served.engine)
    names = [name for name in ROWS if name in wanted and name in variants and name not in args.skip]
    results = {name: Result(name) for name in names}
    try:
        for name in names:  # warm-up: first calls compile kernels and fill caches
            variants[name][1](warm_pairs, warm_convs)
        for repeat in range(args.repeats):
            for name in names:
                if name == "card" and repeat:
                    continue  # ten times slower than the rest and no target depends on it: timed once
                for engine in engines:
                    engine.reset_prefix_cache()  # each run computes its prompts anew, as on new data
                for started in servers:
                    urllib.request.urlopen(urllib.request.Request(f"{started.base_url}/reset_prefix_cache",
                                                                  method="POST"), timeout=60).close()
                timed(results[name], lambda run=variants[name][1]: run(pairs, convs))
                print(f"  {name}: {results[name].seconds[-1]:.1f} s (load average {os.getloadavg()[0]:.1f})",
                      file=sys.stderr, flush=True)
    finally:
        for started in servers:
            started.stop()

    critic_rate = len(pairs) / results["critic"].best if "critic" in results else float("nan")
    table = []
    for name in names:
        result = results[name]
        rate = len(pairs) / result.best
        table.append({  # critic_over_row: critic's transformers fp32 score row over this row
            "row": name, "what": variants[name][0], "seconds": round(result.best, 2),
            "all_seconds": [round(s, 2) for s in result.seconds], "pairs_per_s": round(rate, 3),
            "critic_over_row": round(critic_rate / rate, 3), "peak_rss_mib": round(result.peak_rss / (1 << 20)),
            "unparseable": result.unparseable,
        })
    ratio = {row["row"]: row["critic_over_row"] for row in table}
    targets = {}
    if not args.gpu_8b_shape:
        targets = {
            "critic >= 0.85 x limit": ratio.get("limit", 0) >= 0.85 if "limit" in ratio else None,
            "critic >= 1.5 x card-batched": ratio.get("card-batched", 0) >= 1.5 if "card-batched" in ratio else None,
            "critic >= 1.4 x outlines": ratio.get("outlines", 0) >= 1.4 if "outlines" in ratio else None,
        }
    seconds = {name: results[name].best for name in names}
    if "vllm" in seconds and "vllm-alone" in seconds:
        targets["critic on vLLM >= 0.95 x vLLM alone (fp32)"] = seconds["vllm-alone"] / seconds["vllm"] >= 0.95
    if "vllm-bf16" in seconds and "vllm-alone-bf16" in seconds:
        targets["critic on vLLM >= 0.95 x vLLM alone (bf16)"] = \
            seconds["vllm-alone-bf16"] / seconds["vllm-bf16"] >= 0.95
    for suffix, dtype in (("", "fp32"), ("-bf16", "bf16")):
        if f"server{suffix}" in seconds and f"vllm{suffix}" in seconds:
            targets[f"critic over vllm serve >= 0.9 x critic on in-process vLLM ({dtype})"] = \
                seconds[f"vllm{suffix}"] / seconds[f"server{suffix}"] >= 0.9
    fastest = min((name for name in seconds if name in CRITIC_ROWS), key=seconds.__getitem__, default=None)
    if "critic" in seconds and fastest is not None:
        targets[f"critic's fastest ({fastest}) >= 1.5 x critic score (transformers fp32)"] = \
            seconds["critic"] / seconds[fastest] >= 1.5
    limit: dict[str, Any] = {}
    if model.device.type == "cpu" and fastest is not None:
        rate = cpu_bf16_rate(args.threads)
        parameters = non_embedding_parameters(model)
        floor = tokens.unique * 2 * parameters / rate
        limit = {"bf16_matmul_gflops": round(rate / 1e9, 1), "matmul_shape": list(CPU_MATMUL_SHAPE),
                 "threads": args.threads, "non_embedding_parameters": parameters, "unique_tokens": tokens.unique,
                 "bf16_limit_s": round(floor, 2), "fastest_row": fastest, "fastest_s": round(seconds[fastest], 2),
                 "fastest_share_of_limit": round(floor / seconds[fastest], 3)}
        targets[f"critic's fastest ({fastest}) >= 0.7 x the bf16 limit"] = floor / seconds[fastest] >= 0.7
    vllm_ratios = {f"{alone} / {ours}": round(seconds[alone] / seconds[ours], 3)
                   for alone, ours in (("vllm-alone", "vllm"), ("vllm-alone-bf16", "vllm-bf16"),
                                       ("vllm", "server"), ("vllm-bf16", "server-bf16"))
                   if alone in seconds and ours in seconds}
    vllm_ratios.update({f"critic / {name}": round(seconds["critic"] / seconds[name], 3)
                        for name in ("vllm", "vllm-bf16", "critic-bf16") if name in seconds and "critic" in seconds})
    agreements = {f"{low} against {high}": agreement(JUDGED[high], JUDGED[low])
            for high, low in (("critic", "critic-bf16"), ("vllm", "vllm-bf16"), ("critic", "vllm"),
                              ("vllm", "server"), ("vllm-bf16", "server-bf16"))
            if high in JUDGED and low in JUDGED}
    gpu: dict[str, Any] = {}
    if model.device.type == "cuda":
        params = sum(p.numel() for n, p in model.named_parameters() if "embed_tokens" not in n and "lm_head" not in n)
        rate = matmul_rate(str(model.device))
        achieved = 2 * params * tokens.unique_rows / results["critic"].best
        gpu = {"gpu": torch.cuda.get_device_name(), "bf16_matmul_tflops": round(rate / 1e12, 1),
               "critic_model_tflops": round(achieved / 1e12, 1), "share_of_matmul_rate": round(achieved / rate, 3),
               "flops_counted": "2 x non-embedding parameters x the tokens of critic's rows "
                                "(no padding, no attention, no LM head)",
               "cuda_peak_allocated_gib": round(torch.cuda.max_memory_allocated() / (1 << 30), 2)}

    print(f"\n{len(pairs)} pairs x 2 orders, {args.threads} threads, {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, model {backend.name} ({model.dtype}, {model.config._attn_implementation}), "
          f"loaded in {load_seconds:.0f} s")
    print(f"tokens: raw {tokens.raw} (median {tokens.median_prompt:.0f}/prompt), unique {tokens.unique} "
          f"(critic's rows {tokens.unique_rows}: repeated pairs share their prefix too), critic padded "
          f"{tokens.padded}; fixed {args.batch_size}-batches in data order hold {tokens.fixed_padded}")
    if engines or servers:
        from critic.backends._vllm_engine import thread_binding

        binding = os.environ.get("VLLM_CPU_OMP_THREADS_BIND") or thread_binding() or \
            "auto (vLLM reserves one core for itself)"
        print(f"vLLM (in-process and served): its worker's threads are not --threads: "
              f"VLLM_CPU_OMP_THREADS_BIND={binding}; server rows: --max-concurrency {args.server_concurrency}")
    print(f"generation rows: --max-new-tokens {args.max_new_tokens}; best of {args.repeats} interleaved run(s) "
          "(row 1: one run); "
          f"load average now {', '.join(f'{x:.1f}' for x in os.getloadavg())}\n")
    header = f"{'row':<62} {'s':>8} {'pairs/s':>8} {'critic/row':>10} {'peak RSS MiB':>12} {'unparseable':>11}"
    print(header)
    print("-" * len(header))
    for row in table:
        unparseable = "" if row["unparseable"] is None else str(row["unparseable"])
        print(f"{row['what']:<62} {row['seconds']:>8.1f} {row['pairs_per_s']:>8.3f} {row['critic_over_row']:>10.2f} "
              f"{row['peak_rss_mib']:>12} {unparseable:>11}")
    for target, held in targets.items():
        print(f"target {target}: {'held' if held else 'not held' if held is not None else 'not measured'}")
    for pair_of_rows, ratio_value in vllm_ratios.items():
        print(f"speed {pair_of_rows} (time over time: above 1, the second is faster): {ratio_value:.2f}")
    for pair_of_rows, agreed in agreements.items():
        print(f"{pair_of_rows}: verdict letters agree on {agreed['verdicts_agree']:.1%} of {agreed['orders']} orders, "
              f"largest probability difference {agreed['max_prob_diff']:.2g}")
    for key, value in gpu.items():
        print(f"{key}: {value}")
    if limit:
        print(f"bf16 limit: {limit['unique_tokens']} unique tokens x 2 x {limit['non_embedding_parameters']} "
              f"non-embedding parameters at {limit['bf16_matmul_gflops']} GFLOP/s (a {CPU_MATMUL_SHAPE} bf16 "
              f"product, {args.threads} threads) = {limit['bf16_limit_s']:.1f} s; critic's fastest row "
              f"({limit['fastest_row']}, {limit['fastest_s']:.1f} s) reaches {limit['fastest_share_of_limit']:.2f} "
              "of it")
    print(json.dumps({
        "pairs": len(pairs), "coerced_fields": coerced, "threads": args.threads, "batch_size": args.batch_size,
        "max_new_tokens": args.max_new_tokens, "repeats": args.repeats, "device": str(model.device),
        "model": backend.name, "dtype": str(model.dtype), "torch": torch.__version__,
        "tokens": {"raw": tokens.raw, "padded": tokens.padded, "unique": tokens.unique,
                   "unique_critic_rows": tokens.unique_rows,
                   "fixed_batches_padded": tokens.fixed_padded, "median_prompt": tokens.median_prompt},
        "rows": table, "targets": targets, "speed_ratios": vllm_ratios, "agreement": agreements,
        "gpu": gpu or "not measured", "bf16_limit": limit or "not measured", "load_average": os.getloadavg(),
    }))


if __name__ == "__main__":
    main()
