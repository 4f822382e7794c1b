"""ServeSettings: checked when built; the API key from CRITIC_API_KEY when none is given."""

from __future__ import annotations

import pytest

from critic.errors import InputError
from critic.serve import ServeSettings


def test_defaults_bind_loopback_only_without_a_key():
    settings = ServeSettings()
    assert settings.host == "127.0.0.1" and settings.api_key is None


@pytest.mark.parametrize(("field", "value", "message"), [
    ("port", 70000, "port must be"),
    ("port", True, "port must be"),
    ("api_key", "  ", "non-empty"),
    ("max_pairs_per_request", 0, "max_pairs_per_request must be a whole number of at least 1"),
    ("max_queue", 1.5, "max_queue must be"),
    ("max_wait_ms", -1, "max_wait_ms must be 0 or more"),
    ("request_timeout_s", 0, "request_timeout_s must be more than 0"),
    ("failed_reward", float("nan"), "failed_reward must be a finite number"),
])
def test_bad_values_are_input_errors_when_built(field, value, message):
    with pytest.raises(InputError, match=message):
        ServeSettings(**{field: value})


def test_the_key_comes_from_the_environment_unless_given(monkeypatch):
    monkeypatch.setenv("CRITIC_API_KEY", "from-env")
    assert ServeSettings().with_env_key().api_key == "from-env"
    assert ServeSettings(api_key="given").with_env_key().api_key == "given"
    monkeypatch.setenv("CRITIC_API_KEY", "")
    assert ServeSettings().with_env_key().api_key is None
