"""Which engine runs a model: chosen once from LoadOptions.backend, checked before anything loads."""

from __future__ import annotations

import pytest

from critic import cli
from critic.backends import select
from critic.errors import InputError, MissingDependencyError
from critic.options import LoadOptions


@pytest.mark.parametrize(
    ("backend", "device", "installed", "cuda", "chosen"),
    [
        ("transformers", None, True, True, "transformers"),
        ("vllm", "cpu", True, False, "vllm"),
        ("auto", None, True, True, "vllm"),
        ("auto", None, True, False, "transformers"),
        ("auto", "cpu", True, True, "transformers"),
        ("auto", "cuda:0", True, True, "vllm"),
        ("auto", None, False, True, "transformers"),
    ],
)
def test_the_backend_chosen(monkeypatch, backend, device, installed, cuda, chosen):
    import torch

    monkeypatch.setattr(select, "vllm_installed", lambda: installed)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert select.choose_backend(LoadOptions(backend=backend, device=device)) == chosen


def test_vllm_asked_for_but_absent_is_an_install_hint(monkeypatch):
    monkeypatch.setattr(select, "vllm_installed", lambda: False)
    with pytest.raises(MissingDependencyError, match=r"pip install 'critic\[vllm\]'"):
        select.choose_backend(LoadOptions(backend="vllm"))


def test_an_unknown_backend_is_refused_when_the_options_are_built():
    with pytest.raises(InputError, match="unknown backend 'vlm'; use one of auto, transformers, vllm"):
        LoadOptions(backend="vlm")


def test_the_cli_refuses_a_missing_vllm_before_loading(monkeypatch, tmp_path, capsys):
    from critic import Judge

    monkeypatch.setattr(select, "vllm_installed", lambda: False)
    monkeypatch.setattr(Judge, "from_pretrained", lambda *a, **k: pytest.fail("the model must not load"))
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"prompt": "q", "response_a": "a", "response_b": "b"}\n')
    assert cli.main(["judge", str(pairs), "--model", "demo", "--backend", "vllm"]) == 2
    assert "--backend vllm needs the optional package 'vllm'" in capsys.readouterr().err
