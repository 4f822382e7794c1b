"""The backend registry: backends found by name, "auto" resolved once, checked before anything loads."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from critic import Judge, Pair, RewardJudge, cli
from critic.backends import registry
from critic.backends.base import BackendBase, BackendOutput
from critic.errors import InputError, MissingDependencyError
from critic.options import LoadOptions, ServerOptions
from critic.testing import FakeBackend, FakeScorer

SERVED = ServerOptions("http://127.0.0.1:9")


@pytest.fixture
def installed(monkeypatch):
    """Pretend vLLM is installed or not: ``installed(False)``."""

    def pretend(vllm: bool) -> None:
        real = registry.module_available
        monkeypatch.setattr(registry, "module_available", lambda module: vllm if module == "vllm" else real(module))

    return pretend


@pytest.mark.parametrize(
    ("backend", "device", "vllm", "cuda", "chosen"),
    [
        ("transformers", None, True, True, "transformers"),
        ("vllm", "cpu", True, False, "vllm"),
        ("auto", None, True, True, "vllm"),
        ("auto", None, True, False, "transformers"),
        ("auto", "cpu", True, True, "transformers"),
        ("auto", None, False, True, "transformers"),
        ("fake", None, False, False, "fake"),
    ],
)
def test_the_backend_chosen(monkeypatch, installed, backend, device, vllm, cuda, chosen):
    import torch

    installed(vllm)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert registry.choose_backend(LoadOptions(backend=backend, device=device)).name == chosen


def test_auto_on_a_named_cuda_device_is_vllm(monkeypatch, installed):
    # LoadOptions checks a named device when built; built on a CPU machine, so the check is skipped here.
    installed(True)
    monkeypatch.setattr(LoadOptions, "check_device", lambda self: None)
    assert registry.choose_backend(LoadOptions(device="cuda:0")).name == "vllm"


def test_vllm_asked_for_but_absent_is_an_install_hint(installed):
    installed(False)
    with pytest.raises(MissingDependencyError, match=r"pip install 'critic\[vllm\]'"):
        registry.choose_backend(LoadOptions(backend="vllm"))


def test_an_unknown_backend_is_refused_when_the_options_are_built():
    with pytest.raises(InputError, match="unknown backend 'vlm'; use one of auto, transformers, vllm, fake, server"):
        LoadOptions(backend="vlm")


def test_checking_the_options_imports_no_engine():
    code = textwrap.dedent("""
        import sys
        from critic.options import LoadOptions
        from critic.backends.registry import backend_choices
        LoadOptions(backend="vllm"); LoadOptions(backend="transformers"); LoadOptions(device="cpu")
        print(backend_choices(), sorted(name for name in ("torch", "vllm", "transformers") if name in sys.modules))
    """)
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert shown.strip() == "('auto', 'transformers', 'vllm', 'fake', 'server') []"


def test_the_cli_refuses_a_missing_vllm_before_loading(monkeypatch, installed, tmp_path, capsys):
    installed(False)
    monkeypatch.setattr(Judge, "from_pretrained", lambda *a, **k: pytest.fail("the model must not load"))
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"prompt": "q", "response_a": "a", "response_b": "b"}\n')
    assert cli.main(["judge", str(pairs), "--model", "demo", "--backend", "vllm"]) == 2
    assert "--backend vllm needs the optional package 'vllm'" in capsys.readouterr().err


# --- a new engine is one module plus one registration -------------------------------------------------


class EchoBackend(BackendBase):
    """A whole backend in a few lines: prefers the answer that repeats the question's last word."""

    kind = "echo"

    def __init__(self, model: str) -> None:
        self.model = model
        self.closed = False

    def run(self, requests):
        outputs = []
        for request in requests:
            word = request.pair.prompt.split()[-1]
            first = word in request.pair.response_a
            outputs.append(BackendOutput(letter_probs={"A": 0.9 if first else 0.1, "B": 0.1 if first else 0.9}))
        return outputs

    def close(self) -> None:
        self.closed = True


def load_echo(model, *, load, limits, share_prefix):
    return EchoBackend(model)


@pytest.fixture
def echo():
    registry.register_backend("echo", judge=f"{__name__}:load_echo", summary="test engine")
    yield
    registry.unregister_backend("echo")


def test_a_registered_backend_loads_by_name_everywhere(echo, tmp_path, capsys):
    assert "echo" in registry.backend_choices()
    with Judge.from_pretrained("echo-model", load=LoadOptions(backend="echo")) as judge:
        assert judge.compare("Name a colour like red", "red is a colour", "blue").label == "A"
        assert judge.describe().backend == "echo"
        backend = judge.backend
    assert backend.closed  # the with block closed the backend
    with pytest.raises(InputError, match="the echo backend runs no reward model; use one of transformers, vllm"):
        RewardJudge.from_pretrained("echo-model", load=LoadOptions(backend="echo"))
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"prompt": "Name a colour like red", "response_a": "blue", "response_b": "red is one"}\n')
    assert cli.main(["judge", str(pairs), "--model", "m", "--backend", "echo", "--quiet"]) == 0
    assert '"label": "B"' in capsys.readouterr().out


def test_registration_is_checked():
    with pytest.raises(InputError, match="already registered"):
        registry.register_backend("vllm", judge="x:y")
    with pytest.raises(InputError, match="other than 'auto'"):
        registry.register_backend("auto", judge="x:y")
    with pytest.raises(InputError, match="'module:attribute'"):
        registry.register_backend("nocolon", judge="just_a_module")
    with pytest.raises(InputError, match="needs a judge loader, a scorer loader or both"):
        registry.register_backend("empty")


def test_another_packages_install_hint_is_its_own(monkeypatch):
    spec = registry.register_backend("absent", judge="nowhere:load", requires=("no_such_module_here",),
                                     install="pip install no-such-engine")
    try:
        with pytest.raises(MissingDependencyError, match="Install it with: pip install no-such-engine$"):
            registry.choose_backend(LoadOptions(backend="absent"))
        assert not spec.installed()
    finally:
        registry.unregister_backend("absent")


def test_an_installed_package_registers_its_backend_through_an_entry_point(tmp_path, monkeypatch):
    (tmp_path / "critic_plugin_demo.py").write_text(textwrap.dedent("""
        from critic.backends.registry import register_backend

        def register():
            register_backend("plugged", judge="critic.backends.fake:FakeBackend.from_pretrained")
    """))
    info = tmp_path / "critic_plugin_demo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: critic-plugin-demo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[critic.backends]\nplugged = critic_plugin_demo:register\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    try:
        assert registry.backend_names()[-1] == "plugged"
        assert isinstance(registry.generative_backend("m", load=LoadOptions(backend="plugged"), limits=None),
                          FakeBackend)
    finally:
        registry.unregister_backend("plugged")


def test_prepare_runs_the_backends_own_step_once(monkeypatch, installed):
    import critic.backends._vllm_engine as engine

    installed(True)
    seen = []
    monkeypatch.setattr(engine, "engine_source", seen.append)
    registry.get_backend("vllm").prepare_model("demo")
    registry.get_backend("transformers").prepare_model("demo")  # nothing to prepare
    assert seen == ["demo"]


# --- the fake backend: a dry run with no model ------------------------------------------------------


def test_the_fake_backend_is_a_dry_run_where_the_longer_answer_wins():
    judge = Judge.from_pretrained("anything", load=LoadOptions(backend="fake"))
    preference = judge.compare("q", "a short one", "a much longer answer")
    assert preference.label == "B" and preference.consistent and preference.p_a == pytest.approx(0.25)
    reward = RewardJudge.from_pretrained("anything", load=LoadOptions(backend="fake"))
    assert isinstance(reward.scorer, FakeScorer) and reward.score([[{"role": "assistant", "content": "x" * 50}]]) \
        == [0.5]
    assert judge.describe().backend == reward.describe().backend == "fake"
    assert Judge.from_pretrained("m", load=LoadOptions(backend="fake")).compare_batch(
        [Pair("q", "same", "size")])[0].label == "tie"


# --- a served backend: the model's address is ServerOptions ------------------------------------------


@pytest.fixture
def served():
    """A backend registered as served (the server backend's shape), removed afterwards."""
    registry.register_backend("served-test", judge=f"{__name__}:load_echo", served=True)
    yield "served-test"
    registry.unregister_backend("served-test")


def test_a_served_backend_needs_the_servers_address_and_nothing_else_takes_one(served):
    assert LoadOptions(backend=served, server=SERVED).server == SERVED
    with pytest.raises(InputError, match="needs its address: --base-url URL"):
        LoadOptions(backend=served)
    with pytest.raises(InputError, match="read only by a backend that judges with a served model; add --backend "
                                         "server"):  # critic's own served backend comes first
        LoadOptions(backend="transformers", server=SERVED)
    with pytest.raises(InputError, match="read only by a backend"):
        LoadOptions(server=SERVED)  # auto never means a server
    with pytest.raises(InputError, match=r"the server's; leave device \(--device\), dtype \(--dtype\) out"):
        LoadOptions(backend=served, server=SERVED, device="cpu", dtype="bf16")
