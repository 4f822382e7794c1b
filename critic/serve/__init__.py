"""``critic serve``: a judge and reward service over HTTP (Starlette + uvicorn, the ``serve`` extra).

``create_app(judge, settings)`` builds the ASGI app (Starlette is imported when it is called);
the ``critic serve`` command runs it under uvicorn.
"""

from __future__ import annotations

from critic.serve.app import create_app
from critic.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]
