"""Serving an app for a test: critic's server (uvicorn) in a thread on a loopback port, always stopped."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

STARTUP_S = 30.0


class Served:
    """``app`` run by critic's server on 127.0.0.1 (a free port, or ``port``) in a thread; :meth:`stop` shuts it
    down as SIGTERM does (within the app's shutdown budget)."""

    def __init__(self, app, *, port: int = 0) -> None:
        import uvicorn

        from critic.serve.server import server
        from critic.serve.settings import ServeSettings

        # critic's own app runs under critic's server (its limits and shutdown); any other ASGI app (a test's
        # stub of another engine, verl's router) under plain uvicorn
        service = getattr(getattr(app, "state", None), "_state", {}).get("service")
        self.settings = service.settings if service is not None else ServeSettings()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = (server(app, self.settings) if service is not None else
                       uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on",
                                                     timeout_graceful_shutdown=int(self.settings.shutdown_timeout_s))))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + STARTUP_S
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                self.stop()
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=self.settings.shutdown_timeout_s + 20)
        self.sock.close()
        assert not self.thread.is_alive(), "the test server did not stop"


@contextlib.contextmanager
def serving(app, *, port: int = 0) -> Iterator[str]:
    """Run ``app`` until the block ends; yields its base URL."""
    served = Served(app, port=port)
    try:
        yield served.url
    finally:
        served.stop()


def wait_until(condition, what: str, *, within_s: float = 20.0) -> None:
    """Poll ``condition`` until it holds (bounded)."""
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.01)
