"""Backends run the model behind a :class:`~critic.backends.base.Backend` seam.

Backends are found by name in :mod:`critic.backends.registry`; each engine's
module (``transformers``, ``vllm``) is imported on use, so importing critic
does not import torch. :class:`~critic.backends.encoder.PromptEncoder` is the
one prompt encoder they share.
"""

from critic.backends.base import (
    AsyncBackend,
    AsyncRewardScorer,
    Backend,
    BackendBase,
    BackendOutput,
    RewardScorer,
    ScorerBase,
    VerdictRequest,
)
from critic.backends.fake import FakeBackend
from critic.backends.registry import BackendSpec, backend_names, register_backend

__all__ = [
    "AsyncBackend",
    "AsyncRewardScorer",
    "Backend",
    "BackendBase",
    "BackendOutput",
    "BackendSpec",
    "FakeBackend",
    "RewardScorer",
    "ScorerBase",
    "VerdictRequest",
    "backend_names",
    "register_backend",
]
