"""Serving an app for a test: uvicorn in a thread on a free loopback port, always stopped."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

STARTUP_S = 30.0


@contextlib.contextmanager
def serving(app, *, port: int = 0) -> Iterator[str]:
    """Run ``app`` on 127.0.0.1 (a free port, or ``port``) with critic's server until the block ends (a
    shutdown as on SIGTERM, within the app's shutdown budget); yields its base URL."""
    from critic.serve.server import server as critic_server

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    settings = app.state.service.settings
    server = critic_server(app, settings)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_S
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=settings.shutdown_timeout_s + 20)
        sock.close()
