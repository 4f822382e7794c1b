"""Option objects, defined once: built from the command line (or by hand) and passed down whole.

Each is frozen and checks its values when built, so a bad value fails in a
second, before any model loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from critic.errors import InputError

DEFAULT_MAX_BATCH_SIZE = 16
DEFAULT_MAX_BATCH_TOKENS = 16384
DEFAULT_MAX_NEW_TOKENS = 2048
# The dtype names users may type, each with the torch dtype it means (the one list; loading reads it too).
DTYPE_NAMES = {"bf16": "bfloat16", "bfloat16": "bfloat16", "fp16": "float16", "float16": "float16",
               "fp32": "float32", "float32": "float32"}
DTYPES = tuple(DTYPE_NAMES)
DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu")
# What runs the model: "auto" is vLLM when it is installed and the device is CUDA, transformers otherwise.
BACKENDS = ("auto", "transformers", "vllm")
Overflow = Literal["error", "truncate"]
OVERFLOW_POLICIES: tuple[Overflow, ...] = ("error", "truncate")


@dataclass(frozen=True)
class LoadOptions:
    """How to load a model: what runs it, where, in which precision, with which attention.

    ``backend`` is ``"transformers"``, ``"vllm"`` or ``"auto"`` (vLLM when it is
    installed and the device is CUDA, transformers otherwise; see
    :func:`critic.backends.select.choose_backend`). ``device`` and ``dtype``
    default to CUDA/bf16 when CUDA is available, CPU/fp32 otherwise.
    :meth:`check_device` says whether the device exists here.
    """

    device: str | None = None
    dtype: str | None = None
    attn_implementation: str | None = None
    trust_remote_code: bool = False
    backend: str = "auto"

    def __post_init__(self) -> None:
        if self.device is not None and self.device.split(":")[0] not in DEVICE_TYPES:
            raise InputError(f"unknown device '{self.device}'; use one of {', '.join(DEVICE_TYPES)} "
                             "(with ':N' for a numbered device, e.g. cuda:1)")
        if self.dtype is not None and self.dtype not in DTYPES:
            raise InputError(f"unknown dtype '{self.dtype}'; use one of {', '.join(DTYPES)}")
        if self.backend not in BACKENDS:
            raise InputError(f"unknown backend '{self.backend}'; use one of {', '.join(BACKENDS)}")

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


__all__ = ["BatchLimits", "LoadOptions"]
