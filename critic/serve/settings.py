"""The server's settings: one frozen object, checked when it is built, passed down whole."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from critic.errors import InputError
from critic.options import DEFAULT_MAX_BATCH_SIZE
from critic.wire import API_KEY_ENV

DEFAULT_HOST = "127.0.0.1"  # loopback only; --host says otherwise, on purpose
DEFAULT_PORT = 8000


@dataclass(frozen=True)
class ServeSettings:
    """Where the server listens, who may call it, and how much one request may ask.

    ``api_key`` (or ``CRITIC_API_KEY``, see :meth:`with_env_key`) requires
    ``Authorization: Bearer <key>`` on every endpoint but ``/health``.
    ``max_body_bytes``, ``max_pairs_per_request`` and ``max_text_chars`` bound
    one request (413 past them); ``max_queue`` bounds the requests waiting for
    the judge (503 with ``Retry-After`` past it). Concurrent requests are merged
    into one judge call of at most ``max_batch_pairs`` items, waiting at most
    ``max_wait_ms`` for company; a request not answered within
    ``request_timeout_s`` gets 504. ``failed_reward`` is the ``/get_reward``
    reward of a query the judge could not judge (OpenRLHF has no slot for a
    missing reward; ``extra_logs.critic_failed`` marks it).

    Before a request reaches the app: its header block may hold at most
    ``max_header_bytes`` (431 past it) and must arrive within
    ``header_timeout_s`` of its first byte (or of the connection, 408 then); its
    body must arrive within ``body_timeout_s`` of the headers (408);
    ``max_connections`` connections are served at once (the next one gets 503 and
    is closed). On SIGTERM the server stops accepting, judges what fits in
    ``shutdown_timeout_s`` and answers every other accepted request 503 with
    ``Retry-After``.
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    api_key: str | None = None
    max_body_bytes: int = 8 * 1024 * 1024
    max_pairs_per_request: int = 512
    max_text_chars: int = 100_000
    max_queue: int = 1024
    max_batch_pairs: int = DEFAULT_MAX_BATCH_SIZE
    max_wait_ms: float = 5.0
    request_timeout_s: float = 600.0
    failed_reward: float = 0.0
    max_header_bytes: int = 64 * 1024
    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    max_connections: int = 1024
    shutdown_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host:
            raise InputError(f"host must be a host name or address, got {self.host!r}")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise InputError(f"port must be a whole number from 0 to 65535, got {self.port!r}")
        if self.api_key is not None and (not isinstance(self.api_key, str) or not self.api_key.strip()):
            raise InputError("the API key must be a non-empty string; leave it out to serve without one")
        for name in ("max_body_bytes", "max_pairs_per_request", "max_text_chars", "max_queue", "max_batch_pairs",
                     "max_header_bytes", "max_connections"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a whole number of at least 1, got {value!r}")
        _positive("max_wait_ms", self.max_wait_ms, zero=True)
        for name in ("request_timeout_s", "header_timeout_s", "body_timeout_s"):
            _positive(name, getattr(self, name), zero=False)
        _positive("shutdown_timeout_s", self.shutdown_timeout_s, zero=True)
        if not isinstance(self.failed_reward, (int, float)) or not math.isfinite(self.failed_reward):
            raise InputError(f"failed_reward must be a finite number, got {self.failed_reward!r}")

    def with_env_key(self) -> ServeSettings:
        """These settings, with the API key from ``CRITIC_API_KEY`` when none was given."""
        if self.api_key is not None or not os.environ.get(API_KEY_ENV):
            return self
        from dataclasses import replace

        return replace(self, api_key=os.environ[API_KEY_ENV])

    def limits(self) -> dict[str, float | int]:
        """The limits a client may need to know (``GET /v1/info``)."""
        return {"max_body_bytes": self.max_body_bytes, "max_pairs_per_request": self.max_pairs_per_request,
                "max_text_chars": self.max_text_chars, "max_queue": self.max_queue,
                "max_batch_pairs": self.max_batch_pairs, "max_wait_ms": self.max_wait_ms,
                "request_timeout_s": self.request_timeout_s, "max_header_bytes": self.max_header_bytes,
                "header_timeout_s": self.header_timeout_s, "body_timeout_s": self.body_timeout_s,
                "max_connections": self.max_connections, "shutdown_timeout_s": self.shutdown_timeout_s}


def _positive(name: str, value: object, *, zero: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{name} must be a number, got {value!r}")
    if value < 0 or (value == 0 and not zero):
        raise InputError(f"{name} must be {'0 or more' if zero else 'more than 0'}, got {value!r}")
