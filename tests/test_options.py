"""critic.options: the option objects check their values when built, so a bad one fails before any model loads."""

from __future__ import annotations

import pytest

from critic import BatchLimits, InputError, LoadOptions


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


def test_an_absent_device_is_said_before_anything_loads():
    import torch

    LoadOptions().check_device()
    LoadOptions(device="cpu").check_device()
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="device 'cuda' is not available on this machine"):
            LoadOptions(device="cuda").check_device()
        with pytest.raises(InputError, match="device 'cuda:3' is not available"):
            LoadOptions(device="cuda:3").check_device()
    else:
        count = torch.cuda.device_count()
        with pytest.raises(InputError, match=f"has {count} cuda device"):
            LoadOptions(device=f"cuda:{count}").check_device()


def test_options_are_frozen():
    with pytest.raises(AttributeError):
        BatchLimits().max_batch_size = 4  # type: ignore[misc]
