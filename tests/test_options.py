"""critic.options: the option objects check their values when built, so a bad one fails before any model loads."""

from __future__ import annotations

import pytest

import pickle

from critic import BatchLimits, InputError, LoadOptions
from critic.options import ServerOptions, spelled


@pytest.mark.parametrize("kwargs, message", [
    ({"max_batch_size": 0}, "max_batch_size must be a whole number of at least 1, got 0"),
    ({"max_batch_tokens": -5}, "max_batch_tokens must be a whole number of at least 1, got -5"),
    ({"max_length": 0}, "max_length must be a whole number of at least 1, got 0"),
    ({"max_batch_size": True}, "max_batch_size must be a whole number of at least 1, got True"),
    ({"max_batch_size": 2.5}, "max_batch_size must be a whole number of at least 1, got 2.5"),
    ({"overflow": "drop"}, "unknown overflow policy 'drop'; choose one of error, truncate"),
])
def test_bad_batch_limits_are_input_errors(kwargs, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        BatchLimits(**kwargs)


def test_batch_limits_defaults_and_good_values():
    assert BatchLimits() == BatchLimits(16, 16384, None, "error")
    assert BatchLimits(max_batch_size=1, max_batch_tokens=1, max_length=1, overflow="truncate").max_length == 1


@pytest.mark.parametrize("kwargs, message", [
    ({"device": "tpu"}, "unknown device 'tpu'"),
    ({"device": "gpu:0"}, "unknown device 'gpu:0'"),
    ({"dtype": "int4"}, "unknown dtype 'int4'"),
])
def test_bad_load_options_are_input_errors(kwargs, message):
    with pytest.raises(InputError, match=message):
        LoadOptions(**kwargs)


def test_an_absent_device_is_refused_when_the_options_are_built():
    import torch

    LoadOptions().check_device()
    LoadOptions(device="cpu").check_device()
    if not torch.cuda.is_available():
        # Refused when built, not only when loaded: a typo costs a second, not a model load.
        with pytest.raises(InputError, match="device 'cuda' is not available on this machine"):
            LoadOptions(device="cuda")
        with pytest.raises(InputError, match="device 'cuda:3' is not available"):
            LoadOptions(device="cuda:3", backend="transformers")
    else:
        count = torch.cuda.device_count()
        with pytest.raises(InputError, match=f"has {count} cuda device"):
            LoadOptions(device=f"cuda:{count}")


def test_no_device_named_costs_no_torch_import():
    import subprocess
    import sys

    code = ("import sys; from critic.options import LoadOptions; LoadOptions(); LoadOptions(device='cpu'); "
            "print('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def test_options_are_frozen():
    with pytest.raises(AttributeError):
        BatchLimits().max_batch_size = 4  # type: ignore[misc]


# --- where a served model is: ServerOptions ----------------------------------------------------------


def test_server_options_defaults_and_normalisation():
    server = ServerOptions("http://127.0.0.1:8000/")
    assert server == ServerOptions("http://127.0.0.1:8000", None, None, None, 16, 600.0, 3, "auto")
    assert ServerOptions("https://gateway.example/judges/", timeout=5).base_url == "https://gateway.example/judges"
    assert ServerOptions("http://h:1", timeout=5).timeout == 5.0 and isinstance(ServerOptions("http://h:1").timeout,
                                                                                  float)


@pytest.mark.parametrize("kwargs, message", [
    ({"base_url": "127.0.0.1:8000"}, "must start with http:// or https://"),
    ({"base_url": "ftp://host"}, "must start with http:// or https://"),
    ({"base_url": "http://"}, "name a host"),
    ({"base_url": "http://host:port"}, "is not a valid URL"),
    ({"base_url": "http://host:8000/v1"}, "without /v1 .*use 'http://host:8000'"),
    ({"base_url": "http://host/?x=1"}, "without \\?query"),
    ({"base_url": "http://user:secret@host"}, "must not hold credentials"),
    ({"base_url": ""}, "must be the server's address"),
    ({"api_key_env": "MY KEY"}, "takes the NAME of an environment variable"),
    ({"served_model": " "}, "served_model \\(--served-model\\) must be a non-empty name"),
    ({"tokenizer": ""}, "tokenizer \\(--tokenizer\\) must be a non-empty name"),
    ({"max_concurrency": 0}, "max_concurrency must be a whole number of at least 1"),
    ({"timeout": 0}, "timeout \\(--timeout\\) must be a number of seconds above 0"),
    ({"timeout": float("inf")}, "must be a number of seconds above 0"),
    ({"retries": -1}, "retries must be a whole number >= 0"),
    ({"dialect": "grpc"}, "unknown server dialect 'grpc'; use one of auto, vllm, openai, sglang"),
])
def test_bad_server_options_are_input_errors(kwargs, message):
    with pytest.raises(InputError, match=message):
        ServerOptions(**{"base_url": "http://127.0.0.1:8000", **kwargs})


def test_a_key_given_where_its_variable_name_goes_is_never_echoed():
    with pytest.raises(InputError) as refused:
        ServerOptions("http://127.0.0.1:8000", api_key_env="sk-live-0123456789abcdef")
    assert "sk-live" not in str(refused.value)


def test_the_api_key_is_read_from_the_environment_when_asked_and_never_kept(monkeypatch):
    server = ServerOptions("http://127.0.0.1:8000", api_key_env="CRITIC_TEST_KEY")
    monkeypatch.delenv("CRITIC_TEST_KEY", raising=False)
    with pytest.raises(InputError, match="CRITIC_TEST_KEY named by api_key_env \\(--api-key-env\\) is not set"):
        server.read_api_key()
    monkeypatch.setenv("CRITIC_TEST_KEY", "sk-secret")
    assert server.read_api_key() == "sk-secret"
    assert "sk-secret" not in repr(server) and "sk-secret" not in repr(pickle.loads(pickle.dumps(server)))
    assert ServerOptions("http://127.0.0.1:8000").read_api_key() is None


def test_spelled_says_an_option_for_python_and_the_command_line():
    assert spelled("overflow", "truncate") == "overflow='truncate' (--overflow truncate)"
    assert spelled("max_length") == "max_length (--max-length)"
