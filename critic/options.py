"""Option objects, defined once: built from the command line (or by hand) and passed down whole.

Each is frozen and checks its values when built, so a bad value fails in a
second, before any model loads.

Where the model is and what runs it are kept apart. ``Judge.from_pretrained``'s
``model`` names the model (a hub id, a folder, a ``.gguf`` file, ``"demo"``);
:class:`LoadOptions` says which engine runs it and how (``backend``, ``device``,
``dtype``); a model that runs behind a server is found through
:class:`ServerOptions` (``LoadOptions.server``: its URL, the *name* of the
environment variable holding its key, its served name, how to talk to it). For a
served model, ``model`` names the judge whose *tokenizer* critic needs here
(``ServerOptions.tokenizer`` overrides it): critic builds the token ids itself.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from critic.errors import InputError

DEFAULT_MAX_BATCH_SIZE = 16
DEFAULT_MAX_BATCH_TOKENS = 16384
DEFAULT_MAX_NEW_TOKENS = 2048
# The dtype names users may type, each with the torch dtype it means (the one list; loading reads it too).
DTYPE_NAMES = {"bf16": "bfloat16", "bfloat16": "bfloat16", "fp16": "float16", "float16": "float16",
               "fp32": "float32", "float32": "float32"}
DTYPES = tuple(DTYPE_NAMES)
DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu")
# "auto" is vLLM when it is installed and the device is CUDA, transformers otherwise; the other
# backend names are those registered in critic.backends.registry.
AUTO_BACKEND = "auto"
Overflow = Literal["error", "truncate"]
OVERFLOW_POLICIES: tuple[Overflow, ...] = ("error", "truncate")

DEFAULT_SERVER_CONCURRENCY = 16
DEFAULT_SERVER_TIMEOUT_S = 600.0
DEFAULT_SERVER_RETRIES = 3
# How critic talks to a server: "auto" detects it once; "vllm" is /v1/completions with the verdict letters'
# full-vocabulary log-probabilities (logprob_token_ids) and /classify for reward models; "openai" is
# /v1/completions with top-k log-probabilities only; "sglang" is SGLang's native /generate.
SERVER_DIALECTS = ("auto", "vllm", "openai", "sglang")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def spelled(name: str, value: object = None) -> str:
    """An option as both audiences type it: ``overflow='truncate' (--overflow truncate)``.

    Messages raised deep in the library (a per-pair error, a refused value) reach
    Python users and command-line users alike; each reads the spelling they use.
    """
    flag = "--" + name.replace("_", "-")
    if value is None:
        return f"{name} ({flag})"
    return f"{name}={value!r} ({flag} {value})"


@dataclass(frozen=True)
class ServerOptions:
    """Where a served judge is and how to talk to it (``--backend server``).

    Args:
        base_url: the server's root, ``http://host:port`` (``--base-url``), without ``/v1``.
        api_key_env: the *name* of the environment variable that holds the API key
            (``--api-key-env``), read when the backend starts. The key itself is never
            stored in options, logs or checkpoints. ``None``: the server takes no key.
        served_model: the name the server knows the model by (``--served-model``);
            ``None``: the one model the server lists.
        tokenizer: the tokenizer critic builds token ids with (``--tokenizer``: a hub id,
            a folder, a ``.gguf`` file or ``demo``); ``None``: the judge model's own.
        max_concurrency: requests in flight at most (``--max-concurrency``).
        timeout: seconds one request may take (``--timeout``).
        retries: how often a busy (429/503) or unreachable server is asked again, with backoff.
        dialect: the wire format, one of :data:`SERVER_DIALECTS` (``"auto"`` detects it once).
    """

    base_url: str
    api_key_env: str | None = None
    served_model: str | None = None
    tokenizer: str | None = None
    max_concurrency: int = DEFAULT_SERVER_CONCURRENCY
    timeout: float = DEFAULT_SERVER_TIMEOUT_S
    retries: int = DEFAULT_SERVER_RETRIES
    dialect: str = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "base_url", _checked_url(self.base_url))
        if self.api_key_env is not None and not (isinstance(self.api_key_env, str)
                                                 and _ENV_NAME.fullmatch(self.api_key_env)):
            # Never echo the value: a user who passed the key itself would see it printed.
            raise InputError("api_key_env (--api-key-env) takes the NAME of an environment variable that holds "
                             "the key (e.g. OPENAI_API_KEY), not the key itself; the value given is not such a name")
        for name in ("served_model", "tokenizer"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise InputError(f"{spelled(name)} must be a non-empty name, got {value!r}")
        _at_least_one("max_concurrency", self.max_concurrency)
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise InputError(f"retries must be a whole number >= 0, got {self.retries!r}")
        timeout = self.timeout
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) \
                or timeout <= 0:
            raise InputError(f"timeout (--timeout) must be a number of seconds above 0, got {timeout!r}")
        object.__setattr__(self, "timeout", float(timeout))
        if self.dialect not in SERVER_DIALECTS:
            raise InputError(f"unknown server dialect '{self.dialect}'; use one of {', '.join(SERVER_DIALECTS)}")

    def read_api_key(self) -> str | None:
        """The API key, read from the environment now (``None`` when ``api_key_env`` is ``None``).

        Backends call this when they start, so the key lives only in the process
        environment and the backend's HTTP client, never in an option object.
        """
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env, "")
        if not key:
            raise InputError(f"the environment variable {self.api_key_env} named by api_key_env (--api-key-env) is "
                             f"not set or empty; export {self.api_key_env}=<key>, or leave --api-key-env out for a "
                             "server that takes no key")
        return key


@dataclass(frozen=True)
class LoadOptions:
    """How to load a model: what runs it, where, in which precision, with which attention.

    ``backend`` is ``"auto"`` (vLLM when it is installed and the device is CUDA,
    transformers otherwise) or a name registered in
    :mod:`critic.backends.registry` (``"transformers"``, ``"vllm"``, ``"fake"``,
    and any added with ``register_backend``). ``device`` and ``dtype`` default to
    CUDA/bf16 when CUDA is available, CPU/fp32 otherwise. A device named here
    (``"cuda"``, ``"cuda:1"``, ``"mps"``) is checked when the options are built: one
    this machine lacks is an :class:`InputError` now, not after a minute of loading
    (``check_device``, which loaders call again where options were unpickled).

    ``server`` is where a served model is (:class:`ServerOptions`); a backend that
    judges over HTTP needs it and every other backend refuses it. The device,
    dtype and attention of a served model are the server's, so they are refused
    with it.
    """

    device: str | None = None
    dtype: str | None = None
    attn_implementation: str | None = None
    trust_remote_code: bool = False
    backend: str = AUTO_BACKEND
    server: ServerOptions | None = None

    def __post_init__(self) -> None:
        if self.device is not None and self.device.split(":")[0] not in DEVICE_TYPES:
            raise InputError(f"unknown device '{self.device}'; use one of {', '.join(DEVICE_TYPES)} "
                             "(with ':N' for a numbered device, e.g. cuda:1)")
        if self.dtype is not None and self.dtype not in DTYPES:
            raise InputError(f"unknown dtype '{self.dtype}'; use one of {', '.join(DTYPES)}")
        if self.server is not None and not isinstance(self.server, ServerOptions):
            raise InputError(f"server must be a ServerOptions, got {type(self.server).__name__}")
        from critic.backends.registry import check_load_options  # the registry imports no engine

        served = check_load_options(self.backend, self.server)
        if served:
            given = [spelled(name) for name in ("device", "dtype", "attn_implementation")
                     if getattr(self, name) is not None]
            if given:
                raise InputError(f"the {self.backend} backend judges with a model served elsewhere: its device, "
                                 f"dtype and attention are the server's; leave {', '.join(given)} out")
        elif self.device not in (None, "cpu"):
            self.check_device()

    def check_device(self) -> None:
        """Raise :class:`InputError` when the requested device is not available on this machine."""
        if self.device is None or self.device == "cpu":
            return
        import torch

        kind, _, number = self.device.partition(":")
        backend = getattr(torch, kind, None)
        available = backend is not None and getattr(backend, "is_available", lambda: False)()
        if not available:
            raise InputError(f"device '{self.device}' is not available on this machine; use --device cpu "
                             "or leave --device out (CUDA when available, else CPU)")
        if number:
            count = getattr(backend, "device_count", lambda: 1)()
            if not number.isdigit() or int(number) >= count:
                raise InputError(f"device '{self.device}' does not exist: this machine has {count} {kind} device(s)")


@dataclass(frozen=True)
class BatchLimits:
    """How much goes into one forward pass, and what to do with a prompt that is too long.

    ``max_length`` is the longest prompt (or conversation) in tokens, never more
    than the model's context (the default). ``overflow="truncate"`` shortens a
    generative judge's responses in the middle behind a visible marker;
    ``"error"`` fails that pair with a reason.
    """

    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS
    max_length: int | None = None
    overflow: Overflow = "error"

    def __post_init__(self) -> None:
        for name in ("max_batch_size", "max_batch_tokens"):
            _at_least_one(name, getattr(self, name))
        if self.max_length is not None:
            _at_least_one("max_length", self.max_length)
        if self.overflow not in OVERFLOW_POLICIES:
            raise InputError(f"unknown overflow policy '{self.overflow}'; choose one of {', '.join(OVERFLOW_POLICIES)}")


def _at_least_one(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name} must be a whole number of at least 1, got {value!r}")


def _checked_url(url: object) -> str:
    """``url`` without trailing slashes, or an :class:`InputError` saying what a server address looks like."""
    example = "e.g. http://127.0.0.1:8000"
    if not isinstance(url, str) or not url.strip():
        raise InputError(f"base_url (--base-url) must be the server's address, {example}; got {url!r}")
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise InputError(f"base_url (--base-url) '{url}' is not a valid URL; {example}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"base_url (--base-url) must start with http:// or https:// and name a host, {example}; "
                         f"got '{url}'")
    if parts.username is not None or parts.password is not None:
        # Options are logged and written to summaries: a password in the URL would go with them.
        raise InputError("base_url (--base-url) must not hold credentials (user:password@); put the key in an "
                         "environment variable and name it with api_key_env (--api-key-env)")
    if parts.query or parts.fragment:
        raise InputError(f"base_url (--base-url) must be the server's root, without ?query or #fragment; {example}")
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        raise InputError(f"base_url (--base-url) is the server's root, without /v1 (critic adds the paths it "
                         f"calls); use '{url.strip().rstrip('/')[: -len('/v1')]}'")
    return url.strip().rstrip("/")


__all__ = ["BatchLimits", "LoadOptions", "ServerOptions", "spelled"]
