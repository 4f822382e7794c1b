"""Model resolution and the errors a user sees for a wrong model."""

from __future__ import annotations

import pytest

from critic import Judge, ModelError
from critic.backends.loading import (
    DEMO_FILE,
    demo_model_path,
    pick_attention,
    pick_dtype,
    resolve_model,
)


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
        Judge.from_pretrained("no-such-org/no-such-judge-model", device="cpu")
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
