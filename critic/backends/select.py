"""Which engine runs a model, chosen once from :class:`~critic.options.LoadOptions`, and the loaders for it.

The judges call :func:`generative_backend` and :func:`reward_scorer`; nothing
else looks at ``LoadOptions.backend``. ``"auto"`` picks vLLM where it pays
(installed, and the model goes on a CUDA device) and transformers elsewhere.
"""

from __future__ import annotations

import importlib.util
import logging
from typing import TYPE_CHECKING

from critic.errors import MissingDependencyError
from critic.options import BatchLimits, LoadOptions

if TYPE_CHECKING:
    from critic.backends.base import Backend
    from critic.backends.reward import RewardScorer

logger = logging.getLogger("critic")


def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


def choose_backend(load: LoadOptions) -> str:
    """``"transformers"`` or ``"vllm"``; raises :class:`MissingDependencyError` for vLLM asked but absent."""
    if load.backend == "vllm":
        if not vllm_installed():
            raise MissingDependencyError("vllm", "vllm", "--backend vllm")
        return "vllm"
    if load.backend == "transformers" or not vllm_installed():
        return "transformers"
    return "vllm" if _on_cuda(load) else "transformers"


def _on_cuda(load: LoadOptions) -> bool:
    if load.device is not None:
        return load.device.startswith("cuda")
    import torch

    return bool(torch.cuda.is_available())


def generative_backend(
    model: str, *, load: LoadOptions, limits: BatchLimits, share_prefix: bool = True
) -> Backend:
    """A loaded backend for a generative judge, on the engine :func:`choose_backend` picks."""
    load.check_device()
    engine = choose_backend(load)
    logger.info("generative judge %s on the %s backend", model, engine)
    if engine == "vllm":
        from critic.backends.vllm import VLLMBackend

        return VLLMBackend.from_pretrained(model, load=load, limits=limits)
    from critic.backends.transformers import TransformersBackend

    return TransformersBackend.from_pretrained(model, load=load, limits=limits, share_prefix=share_prefix)


def reward_scorer(model: str, *, load: LoadOptions, limits: BatchLimits) -> RewardScorer:
    """A loaded scorer for a reward judge, on the engine :func:`choose_backend` picks."""
    load.check_device()
    engine = choose_backend(load)
    logger.info("reward model %s on the %s backend", model, engine)
    if engine == "vllm":
        from critic.backends.vllm_reward import VLLMRewardScorer

        return VLLMRewardScorer.from_pretrained(model, load=load, limits=limits)
    from critic.backends.reward import TransformersRewardScorer

    return TransformersRewardScorer.from_pretrained(model, load=load, limits=limits)
