"""Building a ``vllm.LLM`` from the option objects: one place for both vLLM backends (judge and reward model).

:func:`engine_source` says which folder (or hub id) vLLM reads for a model
name: a hub id or a local folder as given, ``"demo"`` or a ``.gguf`` file as
the HF folder converted from it once (``_demo_folder``). :func:`build_engine`
starts the engine on it.

The choices made here, and why:

- dtype as the transformers backend picks it (``loading.pick_dtype``): fp32 on
  the CPU and bf16 on CUDA unless ``--dtype`` says otherwise;
- on the CPU, eager execution (no ``torch.compile`` start-up) and a bounded KV
  cache (``VLLM_CPU_KVCACHE_SPACE`` GiB when the user set it, else
  :data:`CPU_KV_CACHE_GIB`), since vLLM would otherwise reserve most of the
  machine's memory;
- prefix caching on (the two orders of a pair, and pairs sharing a question,
  compute their common prefix once), ``max_num_seqs`` and
  ``max_num_batched_tokens`` from :class:`BatchLimits`, a fixed seed;
- the context is the model's, capped by ``limits.max_length``;
- on a machine with few CPUs (at most :data:`FEW_CPUS`), the worker's threads bound
  to all of them (:func:`thread_binding`) unless ``VLLM_CPU_OMP_THREADS_BIND`` is
  set: vLLM's automatic binding keeps one core for its scheduler process, which
  on a 2-core machine leaves the model one core (measured: 64 PandaLM pairs x 2
  orders, demo model bf16, 21.6 s with vLLM's binding, 13.6 s on both cores).

``TORCHDYNAMO_DISABLE=1`` (set by ``make test``) makes vLLM's engine process fail
at start-up ("aot_compile is not supported") even in eager mode, so it is
removed from the environment the engine process inherits while it starts.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

from critic.backends._passes import context_limit
from critic.backends.loading import MODEL_ALTERNATIVES, ModelSource, load_config, pick_dtype, resolve_model
from critic.errors import MissingDependencyError, ModelError
from critic.options import BatchLimits, LoadOptions

if TYPE_CHECKING:
    import vllm

logger = logging.getLogger("critic")

Runner = Literal["generate", "pooling"]
# The KV cache vLLM reserves on the CPU unless VLLM_CPU_KVCACHE_SPACE says otherwise.
CPU_KV_CACHE_GIB = 1
# The seed of the engine's sampler (greedy decoding does not read it; fixed all the same).
ENGINE_SEED = 0
# Environment variables the engine process must not inherit while it starts.
ENGINE_HOSTILE_ENV = ("TORCHDYNAMO_DISABLE",)
# The variable that says which CPUs vLLM's CPU worker binds its OpenMP threads to ("auto" by default).
THREAD_BINDING_ENV = "VLLM_CPU_OMP_THREADS_BIND"
# Up to this many CPUs, the core vLLM's automatic binding keeps for its scheduler costs more than it saves.
FEW_CPUS = 8


def import_vllm(feature: str = "the vLLM backend") -> Any:
    """The ``vllm`` module, or :class:`MissingDependencyError` naming ``feature``.

    vLLM's own log lines (its engine processes print dozens at start-up) are kept to
    warnings, on stderr (vLLM's default is stdout, where ``-o -`` writes results), unless
    ``VLLM_LOGGING_LEVEL`` / ``VLLM_LOGGING_STREAM`` say otherwise; critic logs what it started.
    """
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
    try:
        import vllm
    except ImportError as error:
        raise MissingDependencyError("vllm", "vllm", feature) from error
    return vllm


def engine_source(model: str, *, alternatives: str = MODEL_ALTERNATIVES) -> ModelSource:
    """What vLLM reads for ``model``: a hub id or folder as given; the demo model or a ``.gguf`` as an HF folder.

    A GGUF is converted once into a cached fp32 safetensors folder (see
    :mod:`critic.backends._demo_folder`); the transformers backend reads the
    same folder and gets the same ids.
    """
    from critic.backends._demo_folder import as_folder

    return as_folder(resolve_model(model, alternatives=alternatives))


def build_engine(
    folder: str,
    *,
    load: LoadOptions = LoadOptions(),
    limits: BatchLimits = BatchLimits(),
    runner: Runner = "generate",
    max_model_len: int | None = None,
) -> vllm.LLM:
    """A started ``vllm.LLM`` on ``folder`` (a local HF folder or a hub id), set up as ``load`` and ``limits`` say.

    ``max_model_len`` defaults to the model's context capped by ``limits.max_length``.
    Start-up failures become :class:`ModelError`; a missing vLLM, :class:`MissingDependencyError`.
    """
    vllm_module = import_vllm()
    from vllm.platforms import current_platform

    load.check_device()
    on_cpu = bool(current_platform.is_cpu())
    device = "cpu" if on_cpu else "cuda"
    if load.device is not None and load.device.split(":")[0] != device:
        raise ModelError(f"this vLLM build runs on {device}, not on '{load.device}'; pass --device {device}, "
                         "leave --device out, or use --backend transformers")
    source = ModelSource(folder, None, f"model {folder}")
    length = max_model_len or _context(source, load, limits)
    tokens = max(limits.max_batch_tokens, limits.max_batch_size)
    if runner == "pooling" and length is not None:
        tokens = max(tokens, length)  # the pooling runner reads each input in one step (no chunked prefill)
    options: dict[str, Any] = {
        "runner": runner,
        "dtype": pick_dtype(device, load.dtype),
        "trust_remote_code": load.trust_remote_code,
        "seed": ENGINE_SEED,
        "enable_prefix_caching": True,
        "max_num_seqs": limits.max_batch_size,
        "max_num_batched_tokens": tokens,
        "max_model_len": length,
    }
    if on_cpu:
        options["enforce_eager"] = True
        if not os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
            options["kv_cache_memory_bytes"] = CPU_KV_CACHE_GIB * 2**30
    logger.info("starting a vLLM %s engine on %s (%s, %s, max_model_len %s)", runner, folder, device,
                options["dtype"], length)
    with _engine_environment():
        try:
            engine = vllm_module.LLM(folder, **options)
        except (OSError, ValueError, RuntimeError) as error:
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise ModelError(f"vLLM could not start on {folder}: {first_line}. Check the model folder and the "
                             "limits (max_length, max_batch_tokens), or use --backend transformers") from error
    return engine


def engine_max_model_len(engine: vllm.LLM) -> int:
    """The longest sequence (prompt plus new tokens) the started engine takes."""
    length: int = engine.llm_engine.model_config.max_model_len
    return length


def thread_binding() -> str | None:
    """The value critic gives ``VLLM_CPU_OMP_THREADS_BIND``: every CPU this process may run on, or None.

    None (vLLM's own choice) when the user set the variable, or when the process
    may use more than :data:`FEW_CPUS` CPUs: there, the one core vLLM's automatic
    binding keeps for its scheduler is a small share and its NUMA/SMT-aware choice is
    the better one. Below that, the kept core is a large share (half of a 2-core
    machine) and the scheduler, idle while the model computes, costs less than it.
    """
    if os.environ.get(THREAD_BINDING_ENV):
        return None
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if not cpus or len(cpus) > FEW_CPUS:
        return None
    return ",".join(str(cpu) for cpu in cpus)


def engine_environment_defaults() -> dict[str, str]:
    """The variables critic sets for a vLLM engine (in-process or ``vllm serve``) when the user has not."""
    binding = thread_binding()
    return {THREAD_BINDING_ENV: binding} if binding is not None else {}


def _context(source: ModelSource, load: LoadOptions, limits: BatchLimits) -> int | None:
    """The model's context capped by ``limits.max_length`` (None: vLLM's choice), read from its config alone."""
    return context_limit(load_config(source, load), limits.max_length)


@contextlib.contextmanager
def _engine_environment() -> Iterator[None]:
    """The process environment while the engine process starts, then restored.

    Without :data:`ENGINE_HOSTILE_ENV`, and with :func:`engine_environment_defaults`
    (the engine process reads them when it starts).
    """
    saved = {name: os.environ.pop(name) for name in ENGINE_HOSTILE_ENV if name in os.environ}
    added = engine_environment_defaults()
    if added:
        logger.info("binding vLLM's CPU worker to CPUs %s (%s; set it to 'auto' for vLLM's choice)",
                    added[THREAD_BINDING_ENV], THREAD_BINDING_ENV)
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)
        os.environ.update(saved)
