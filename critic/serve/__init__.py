"""``critic serve``: a judge and reward service over HTTP (Starlette + uvicorn, the ``serve`` extra).

``create_app(judge, settings)`` builds the ASGI app (Starlette is imported when it is called);
:func:`critic.serve.server.server` runs it under uvicorn with critic's limits and shutdown (what the
``critic serve`` command does). The wire format it shares with :class:`critic.client.RemoteJudge` is
:mod:`critic.wire`.
"""

from __future__ import annotations

from critic.serve.app import create_app
from critic.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]
