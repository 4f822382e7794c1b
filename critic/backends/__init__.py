"""Backends run the model behind a :class:`~critic.backends.base.Backend` seam.

``TransformersBackend`` lives in :mod:`critic.backends.transformers` and is
imported on use, so importing critic does not import torch.
"""

from critic.backends.base import Backend, BackendOutput, VerdictRequest
from critic.backends.fake import FakeBackend

__all__ = ["Backend", "BackendOutput", "FakeBackend", "VerdictRequest"]
