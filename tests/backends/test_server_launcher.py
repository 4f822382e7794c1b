"""critic's `vllm serve` launcher and its choices: loopback, the in-process engine's CPU settings, both cores.

The launcher runs a real server in tests/conftest.py's fixtures (``vllm_demo_server``);
here, what it decides from the command line and the machine, and how a server that
cannot start is reported.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from critic.backends import _vllm_engine, vllm_serve
from critic.errors import ModelError


def decided(*arguments: str) -> SimpleNamespace:
    args = SimpleNamespace(enforce_eager=False, kv_cache_memory_bytes=None)
    vllm_serve._cpu_defaults(args, arguments)
    return args


def test_cpu_defaults_apply_only_where_the_command_line_is_silent(monkeypatch):
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    assert vars(decided("demo")) == {"enforce_eager": True, "kv_cache_memory_bytes": 2**30}
    assert decided("demo", "--no-enforce-eager").enforce_eager is False
    assert decided("demo", "--kv-cache-memory-bytes=5000000").kv_cache_memory_bytes is None  # vLLM's parse stands
    assert decided("demo", "--gpu-memory-utilization", "0.5").kv_cache_memory_bytes is None
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "4")
    assert decided("demo").kv_cache_memory_bytes is None


@pytest.mark.parametrize(("cpus", "user", "expected"), [
    ({0, 1}, None, "0,1"),                      # 2 cores: both, not vLLM's one
    (set(range(8)), None, "0,1,2,3,4,5,6,7"),
    (set(range(9)), None, None),                # many cores: vLLM's NUMA/SMT-aware choice
    ({0, 1}, "0", None),                        # the user's setting stands
    ({0, 1}, "auto", None),
])
def test_thread_binding_uses_every_cpu_on_small_machines(monkeypatch, cpus, user, expected):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: cpus)
    if user is None:
        monkeypatch.delenv(_vllm_engine.THREAD_BINDING_ENV, raising=False)
    else:
        monkeypatch.setenv(_vllm_engine.THREAD_BINDING_ENV, user)
    assert _vllm_engine.thread_binding() == expected
    environment = vllm_serve.serve_environment({"TORCHDYNAMO_DISABLE": "1", "KEEP": "x"})
    assert "TORCHDYNAMO_DISABLE" not in environment and environment["KEEP"] == "x"
    assert environment.get(_vllm_engine.THREAD_BINDING_ENV) == expected


def test_served_names():
    assert vllm_serve.served_name("demo") == "demo"
    assert vllm_serve.served_name("/models/judge.Q4.gguf") == "judge.Q4.gguf"
    assert vllm_serve.served_name("Skywork/Skywork-Critic-Llama-3.1-8B") is None


def test_a_server_that_cannot_start_says_why(tmp_path):
    pytest.importorskip("vllm", reason="the launcher needs vllm (pip install 'critic[vllm]')")
    server = vllm_serve.VllmServer(str(tmp_path / "missing.gguf"), log_path=tmp_path / "log.txt", start_timeout=120)
    with pytest.raises(ModelError, match=r"exited with status 1 before answering(.|\n)*missing.gguf' does not exist"):
        server.start()
    assert server.stop() is None  # already stopped
