"""Model resolution, the one loading pipeline, and the errors a user sees for a wrong model."""

from __future__ import annotations

import pytest

from critic import InputError, Judge, ModelError, RewardJudge
from critic.backends import loading
from critic.backends.loading import (
    DEMO_FILE,
    MODEL_ALTERNATIVES,
    demo_model_path,
    load_pretrained,
    pick_attention,
    pick_dtype,
    resolve_model,
)
from critic.options import LoadOptions


def test_demo_alias_resolves_to_the_packaged_gguf():
    source = resolve_model("demo")
    assert source.gguf_file == DEMO_FILE
    assert demo_model_path().is_file()


def test_hub_id_is_left_for_the_hub():
    source = resolve_model("Skywork/Skywork-Critic-Llama-3.1-8B")
    assert source.location == "Skywork/Skywork-Critic-Llama-3.1-8B" and source.gguf_file is None


@pytest.mark.parametrize("model", ["/no/such/folder", "./missing/model/dir", "missing.gguf"])
def test_missing_local_model_is_one_clear_sentence(model):
    with pytest.raises(ModelError) as caught:
        resolve_model(model)
    message = str(caught.value)
    assert model in message and "'demo'" in message


def test_unreachable_hub_id_names_what_was_tried_and_the_demo_alias():
    # HF_HUB_OFFLINE=1 (conftest) makes the hub unreachable, as on a machine with no network.
    with pytest.raises(ModelError) as caught:
        Judge.from_pretrained("no-such-org/no-such-judge-model", load=LoadOptions(device="cpu"))
    message = str(caught.value)
    assert "no-such-org/no-such-judge-model" in message
    assert "'demo'" in message


def test_dtype_and_attention_defaults():
    import torch

    assert pick_dtype("cpu", None) is torch.float32
    assert pick_dtype("cuda", None) is torch.bfloat16
    assert pick_dtype("cpu", "bf16") is torch.bfloat16
    assert pick_attention("cpu") == "sdpa"
    with pytest.raises(ModelError):
        pick_dtype("cpu", "float8")


def test_missing_model_errors_name_the_callers_alternatives():
    with pytest.raises(ModelError) as caught:
        resolve_model("/no/such/folder", alternatives="Pass a reward model instead")
    assert str(caught.value).endswith("Pass a reward model instead") and MODEL_ALTERNATIVES not in str(caught.value)


def test_an_absent_device_fails_before_anything_is_resolved_or_loaded(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    resolved = []
    monkeypatch.setattr(loading, "resolve_model", lambda *args, **kwargs: resolved.append(args))
    for load_model in (Judge.from_pretrained, RewardJudge.from_pretrained):
        with pytest.raises(InputError, match="'cuda' is not available"):
            load_model("/no/such/model", load=LoadOptions(device="cuda"))
    assert resolved == []


def test_the_pipeline_reads_the_config_before_the_tokenizer_and_the_weights(monkeypatch, tmp_path):
    from transformers import AutoModelForCausalLM, LlamaConfig

    LlamaConfig(num_hidden_layers=1).save_pretrained(tmp_path)  # a config, no weights, no tokenizer
    steps = []

    def check_config(config, device):
        steps.append(("config", config.model_type, device))
        return "eager"

    def fake_load_model(source, model_class, **options):
        steps.append(("model", options["attn_implementation"], options["trust_remote_code"]))
        raise ModelError("stop here")

    monkeypatch.setattr(loading, "load_tokenizer", lambda source, **options: steps.append(("tokenizer",)))
    monkeypatch.setattr(loading, "load_model", fake_load_model)
    load = LoadOptions(device="cpu", trust_remote_code=True)
    with pytest.raises(ModelError, match="stop here"):
        load_pretrained(str(tmp_path), AutoModelForCausalLM, load, check_config=check_config)
    assert steps == [("config", "llama", "cpu"), ("tokenizer",), ("model", "eager", True)]
