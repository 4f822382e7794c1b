"""The vLLM backend on the demo model: the same numbers as the transformers backend, whatever the batching.

One vLLM engine serves the whole run (``demo_vllm_backend`` in tests/conftest.py);
the length-limit tests run over both backends in test_engine.py. The demo
folder's caching is tested without a model (``_convert`` replaced).
No timing assertions: speed is measured by benchmarks/throughput.py.
"""

from __future__ import annotations

import json
import os
import sys

import pytest

from critic import Judge
from critic.backends import _demo_folder
from critic.backends.base import VerdictRequest
from critic.backends.loading import ModelSource, load_tokenizer
from critic.errors import MissingDependencyError, ModelError
from critic.options import BatchLimits
from tests.backends.test_engine import requests_for
from tests.conftest import FIDELITY_PAIRS, pandalm_pairs

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def fidelity_requests(pandalm_score_reference):
    """Both orders of the first 16 PandaLM pairs, in score mode (shared with the server backend's tests)."""
    return pandalm_score_reference[0]


@pytest.fixture(scope="module")
def vllm_scores(demo_vllm_backend, fidelity_requests):
    return letter_probs(demo_vllm_backend, fidelity_requests)


def letter_probs(backend, requests):
    return [output.letter_probs for output in backend.run(requests)]


def largest_difference(left, right) -> float:
    assert len(left) == len(right) and all(a is not None and b is not None for a, b in zip(left, right, strict=True))
    return max(abs(a[letter] - b[letter]) for a, b in zip(left, right, strict=True) for letter in a)


# --- fidelity against the transformers backend ----------------------------------------------


def test_prompt_ids_equal_the_transformers_backends(demo_vllm_backend, demo_backend, fidelity_requests):
    # The vLLM side reads the converted folder's tokenizer, the transformers side the GGUF's.
    for request in fidelity_requests[:4] + requests_for(pandalm_pairs(2), mode="generate"):
        assert demo_vllm_backend.prompt_ids(request) == demo_backend.prompt_ids(request)


def test_score_probabilities_equal_the_transformers_backends(pandalm_score_reference, vllm_scores):
    reference = pandalm_score_reference[1]
    assert len(reference) == 2 * FIDELITY_PAIRS
    assert largest_difference(vllm_scores, reference) <= TOLERANCE


def test_constrained_verdict_is_the_score_argmax(demo_vllm_backend, fidelity_requests, vllm_scores):
    constrained = [VerdictRequest(r.pair, r.template, "constrained") for r in fidelity_requests]
    texts = [output.text for output in demo_vllm_backend.run(constrained)]
    assert texts == [f"[[{max(probs, key=probs.get)}]]" for probs in vllm_scores]


def test_greedy_generation_equals_the_transformers_backends(demo_vllm_backend, pandalm_generate_reference):
    requests, texts = pandalm_generate_reference
    ours = demo_vllm_backend.run(requests)
    assert all(output.error is None and output.text for output in ours)
    assert [output.text for output in ours] == texts


# --- batching invariance --------------------------------------------------------------------


def test_pairs_alone_equal_pairs_together(demo_vllm_backend, fidelity_requests, vllm_scores):
    alone = [probs for i in range(0, 12, 2) for probs in letter_probs(demo_vllm_backend, fidelity_requests[i:i + 2])]
    assert largest_difference(alone, vllm_scores[:12]) <= TOLERANCE


def test_results_do_not_depend_on_request_order(demo_vllm_backend, fidelity_requests, vllm_scores):
    backwards = letter_probs(demo_vllm_backend, fidelity_requests[::-1])
    assert largest_difference(backwards[::-1], vllm_scores) <= TOLERANCE


def test_results_do_not_depend_on_batch_size(demo_vllm_backend, fidelity_requests, vllm_scores):
    chunked = [probs for i in range(0, 15, 5) for probs in letter_probs(demo_vllm_backend, fidelity_requests[i:i + 5])]
    assert largest_difference(chunked, vllm_scores[:15]) <= TOLERANCE


# --- limits and errors (the shared ones run over both backends in test_engine.py) ----------


def with_limits(base, engine=None, **limits):
    from critic.backends.vllm import VLLMBackend

    return VLLMBackend(engine or base.engine, base.tokenizer, base.generation_config, limits=BatchLimits(**limits))


def test_default_limit_is_the_engines_context_and_never_more(demo_vllm_backend):
    context = demo_vllm_backend.engine.llm_engine.model_config.max_model_len
    assert context == 8192  # SmolLM2's max_position_embeddings
    assert demo_vllm_backend.max_length == context
    assert with_limits(demo_vllm_backend, max_length=10 * context).max_length == context
    assert with_limits(demo_vllm_backend, max_length=300).max_length == 300


class RejectingEngine:
    """The real engine, except that a batch holding one given prompt is rejected as vLLM rejects a bad input."""

    def __init__(self, engine, poison):
        self.engine, self.poison, self.calls = engine, poison, 0

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def generate(self, prompts, params, **options):
        self.calls += 1
        if any(prompt["prompt_token_ids"] == self.poison for prompt in prompts):
            raise ValueError("the decoder prompt contains a token id out of range")
        return self.engine.generate(prompts, params, **options)


def test_a_request_the_engine_rejects_fails_alone_and_nothing_is_lost(demo_vllm_backend, fidelity_requests,
                                                                      vllm_scores, caplog):
    requests = fidelity_requests[:6]
    engine = RejectingEngine(demo_vllm_backend.engine, demo_vllm_backend.prompt_ids(requests[3]))
    outputs = with_limits(demo_vllm_backend, engine).run(requests)
    assert isinstance(outputs[3].error, ModelError) and "out of range" in str(outputs[3].error)
    kept = [output.letter_probs for i, output in enumerate(outputs) if i != 3]
    assert largest_difference(kept, vllm_scores[:3] + vllm_scores[4:6]) <= TOLERANCE
    assert engine.calls == 1 + len(requests) and "one at a time" in caplog.text


# --- the judge and the engine ---------------------------------------------------------------


def test_the_judge_records_the_vllm_backend(demo_vllm_backend):
    judge = Judge(demo_vllm_backend, mode="score")
    assert judge.describe().backend == "vllm"
    (preference,) = judge.compare_batch(pandalm_pairs(1))
    assert [order.order for order in preference.orders] == ["ab", "ba"]


def test_the_engine_start_leaves_the_environment_as_it_was(demo_vllm_backend):
    # tests/conftest.py sets TORCHDYNAMO_DISABLE=1; the engine start removes it only while the engine process starts.
    assert os.environ.get("TORCHDYNAMO_DISABLE") == "1"


def test_the_converted_folder_tokenizes_as_the_gguf(demo_vllm_backend, demo_backend):
    folder = demo_vllm_backend.engine.llm_engine.model_config.model
    tokenizer = load_tokenizer(ModelSource(folder))
    text = "Compare: [[A]] or [[B]]? <|im_end|> café 🙂"
    assert tokenizer.encode(text) == demo_backend.tokenizer.encode(text)
    assert tokenizer.chat_template == demo_backend.tokenizer.chat_template


def test_missing_vllm_is_a_missing_dependency(monkeypatch):
    from critic.backends._vllm_engine import import_vllm

    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(MissingDependencyError, match=r"critic\[vllm\]"):
        import_vllm()


@pytest.mark.model
def test_bf16_on_the_cpu_loads_the_converted_folder_and_agrees(demo_vllm_backend, fidelity_requests, vllm_scores):
    import torch

    from critic.backends.transformers import TransformersBackend
    from critic.options import LoadOptions

    # The GGUF's packed weights compute in fp32 whatever the dtype; bf16 reads the converted folder's real weights.
    backend = TransformersBackend.from_pretrained("demo", load=LoadOptions(device="cpu", dtype="bf16"))
    assert backend.model.dtype == torch.bfloat16
    assert backend.model.name_or_path == demo_vllm_backend.engine.llm_engine.model_config.model
    bf16 = letter_probs(backend, fidelity_requests[:4])
    assert [max(p, key=p.get) for p in bf16] == [max(p, key=p.get) for p in vllm_scores[:4]]
    assert largest_difference(bf16, vllm_scores[:4]) <= 0.05  # bf16 rounding, measured 0.017 at most on 8 pairs


# --- the converted demo folder (no model) ---------------------------------------------------


@pytest.fixture
def fake_conversion(tmp_path, monkeypatch):
    """``_convert`` replaced by a recorder; the cache under tmp_path; a small stand-in GGUF."""
    monkeypatch.setenv("CRITIC_CACHE_DIR", str(tmp_path / "cache"))
    calls = []

    def convert(gguf, target):
        calls.append(gguf)
        (target / "config.json").write_text("{}", encoding="utf-8")

    monkeypatch.setattr(_demo_folder, "_convert", convert)
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF v1")
    return gguf, calls


def test_the_folder_is_converted_once_and_reused(fake_conversion, tmp_path):
    gguf, calls = fake_conversion
    first = _demo_folder.converted_folder(gguf)
    assert _demo_folder.converted_folder(gguf) == first and len(calls) == 1
    assert first.parent == tmp_path / "cache" / "models" and (first / "config.json").is_file()
    recorded = json.loads((first / _demo_folder.SOURCE_FILE).read_text(encoding="utf-8"))
    assert recorded["size"] == len(b"GGUF v1")


def test_a_changed_gguf_is_converted_again_and_the_stale_folder_removed(fake_conversion):
    gguf, calls = fake_conversion
    first = _demo_folder.converted_folder(gguf)
    gguf.write_bytes(b"GGUF version 2")
    second = _demo_folder.converted_folder(gguf)
    assert second != first and len(calls) == 2
    assert second.is_dir() and not first.exists()


def test_a_failed_conversion_leaves_no_folder(fake_conversion, monkeypatch):
    gguf, _ = fake_conversion

    def broken(gguf, target):
        (target / "model.safetensors").write_bytes(b"half")
        raise OSError("no space left on device")

    monkeypatch.setattr(_demo_folder, "_convert", broken)
    with pytest.raises(ModelError, match="no space left"):
        _demo_folder.converted_folder(gguf)
    assert list((_demo_folder.cache_dir() / "models").iterdir()) == []


def test_the_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("CRITIC_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert _demo_folder.cache_dir() == tmp_path / "critic"
    monkeypatch.setenv("CRITIC_CACHE_DIR", str(tmp_path / "mine"))
    assert _demo_folder.cache_dir() == tmp_path / "mine"
