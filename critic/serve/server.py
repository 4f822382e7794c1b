"""Running the app under uvicorn: what happens before a request reaches the app, and at shutdown.

uvicorn's HTTP protocol (h11) with critic's limits, checked before authentication:

- the header block holds at most ``max_header_bytes`` (h11's incomplete-event
  limit): 431 past it;
- the header block must arrive within ``header_timeout_s`` of its first byte
  (or of the connection's opening): 408 then (a slowloris client holding
  headers open is cut); an idle keep-alive connection is closed by uvicorn
  after 5 s as before;
- the body must arrive within ``body_timeout_s`` of the headers: 408 then (a
  half-sent body is cut, whether or not the app is still reading it);
- at most ``max_connections`` connections at once: the next one gets 503 with
  ``Retry-After`` and is closed;
- every response uvicorn itself writes (a malformed request, the limits above)
  is the JSON error shape, counted in ``/metrics`` (endpoint ``(connection)``);
  an error response's reason phrase carries its message (the
  ``X-Critic-Error`` header), so a client that logs only the status line (as
  OpenRLHF's does) shows why.

Shutdown (SIGTERM or Ctrl-C): :class:`CriticServer` stops accepting
connections, closes idle ones, gives the batcher ``shutdown_timeout_s`` to judge
what fits (:meth:`~critic.serve.batcher.Batcher.drain`; every accepted request
not judged by then is answered 503 with ``Retry-After``), and returns normally:
``critic serve`` then exits 0 (uvicorn would re-raise the signal, exit 143).
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import signal
import socket
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from critic.io.writers import dumps_row
from critic.wire import ERROR_HEADER, problem_header, problem_object

if TYPE_CHECKING:
    import h11
    import uvicorn

    from critic.serve.app import Service
    from critic.serve.settings import ServeSettings

RETRY_AFTER_S = 1
LINGER_S = 2.0  # after an early answer, what the client still sends is read and dropped this long, then the close
SHUTDOWN_GRACE_S = 5.0  # uvicorn's own last resort (cancelling tasks) comes this long after critic's budget
CONNECTION = "(connection)"  # the /metrics endpoint label of what uvicorn answers before the app sees a request


def server(app: Any, settings: ServeSettings, *, log_level: str = "warning") -> uvicorn.Server:
    """A uvicorn server for ``app`` (made by :func:`critic.serve.create_app`) with critic's protocol and shutdown."""
    import uvicorn

    service: Service = app.state.service
    config = uvicorn.Config(app, http=protocol_class(settings, service), lifespan="on", access_log=False,
                            log_level=log_level, timeout_graceful_shutdown=int(settings.shutdown_timeout_s
                                                                               + SHUTDOWN_GRACE_S),
                            h11_max_incomplete_event_size=settings.max_header_bytes)
    return _server_class()(config, service)


def _server_class() -> Any:  # a uvicorn.Server subclass, made when uvicorn is imported
    import uvicorn

    class CriticServer(uvicorn.Server):
        """uvicorn's server; at shutdown the batcher drains within the budget first; the signal is not re-raised."""

        def __init__(self, config: uvicorn.Config, service: Service) -> None:
            super().__init__(config)
            self.service = service

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            self.service.batcher.drain(self.service.settings.shutdown_timeout_s)
            await asyncio.sleep(0)  # one turn of the loop: connections the kernel has queued are taken (and answered)
            await super().shutdown(sockets)

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            handled = (signal.SIGINT, signal.SIGTERM)
            original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)

    return CriticServer


def protocol_class(settings: ServeSettings, service: Service) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with the limits of ``settings``, counting what it refuses in ``service.metrics``."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class Connection(h11.Connection):
        """h11's connection that keeps the last protocol error (for its status) and puts an error's
        message in its reason phrase."""

        error: h11.RemoteProtocolError | None = None

        def next_event(self) -> Any:
            try:
                event = super().next_event()
            except h11.RemoteProtocolError as error:
                self.error = error
                raise
            # h11 bounds a header block only while it is incomplete; one that came in one read is measured here
            if isinstance(event, h11.Request) and _header_bytes(event) > settings.max_header_bytes:
                self.error = h11.RemoteProtocolError("header block too big", error_status_hint=431)
                raise self.error
            return event

        def send(self, event: Any) -> bytes | None:  # type: ignore[override]
            if isinstance(event, h11.Response) and event.status_code >= 400:
                event = _with_reason(event)
            return super().send(event)

    class CriticProtocol(H11Protocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.conn = Connection(h11.SERVER, settings.max_header_bytes)
            self.header_timer: asyncio.TimerHandle | None = None
            self.body_timer: asyncio.TimerHandle | None = None
            self.answered_early = False  # then the rest of what the client sends is dropped unread
            self.last_request = False  # the server is stopping: the request arriving is answered, then the close

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)  # type: ignore[arg-type]
            if len(self.connections) > settings.max_connections:
                self.refuse(503, f"the server holds {settings.max_connections} connections, its limit; retry after "
                                 f"{RETRY_AFTER_S} s", {"Retry-After": str(RETRY_AFTER_S)})
                return
            self.header_timer = self.loop.call_later(settings.header_timeout_s, self.too_slow, "headers")

        def data_received(self, data: bytes) -> None:
            if self.answered_early:
                return
            if self.header_timer is None and self.conn.their_state is h11.IDLE:  # the next request begins
                self.header_timer = self.loop.call_later(settings.header_timeout_s, self.too_slow, "headers")
            super().data_received(data)
            self.watch_phase()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self.watch_phase()

        def watch_phase(self) -> None:
            """Header timer while the headers come, body timer while the body comes, neither otherwise."""
            state = self.conn.their_state
            if self.last_request and self.cycle is not None and not self.cycle.response_complete:
                self.cycle.keep_alive = False
            if state is not h11.IDLE and self.header_timer is not None:
                self.header_timer.cancel()
                self.header_timer = None
            if state is h11.SEND_BODY and self.body_timer is None:
                self.body_timer = self.loop.call_later(settings.body_timeout_s, self.too_slow, "body")
            elif state is not h11.SEND_BODY and self.body_timer is not None:
                self.body_timer.cancel()
                self.body_timer = None

        def shutdown(self) -> None:
            """Close an idle connection; one whose request is arriving gets its answer first (503: stopping)."""
            if self.answered_early:
                self.transport.close()
                return
            idle = self.cycle is None or self.cycle.response_complete
            if idle and self.conn.their_state is h11.IDLE and self.conn.trailing_data[0]:
                self.last_request = True  # its header timer still bounds how long it may take
                return
            super().shutdown()

        def connection_lost(self, exc: Exception | None) -> None:
            for timer in (self.header_timer, self.body_timer):
                if timer is not None:
                    timer.cancel()
            super().connection_lost(exc)

        def too_slow(self, part: str) -> None:
            self.header_timer = self.body_timer = None
            if part == "body" and (self.cycle is None or self.cycle.response_complete):
                self.transport.close()  # answered already: the rest of its body is not waited for
                return
            limit = settings.header_timeout_s if part == "headers" else settings.body_timeout_s
            self.answer_early(408, f"the request's {part} did not arrive within {limit:g} s", {})

        def send_400_response(self, msg: str) -> None:
            error: h11.RemoteProtocolError | None = getattr(self.conn, "error", None)
            status = error.error_status_hint if error is not None else 400
            detail = str(error) if error is not None else msg
            if status == 431:
                detail = f"the request's header block is over {settings.max_header_bytes} bytes"
            self.answer_early(status, f"the request could not be read as HTTP/1.1: {detail}", {})

        def refuse(self, status: int, message: str, headers: dict[str, str]) -> None:
            service.metrics.requests.inc(endpoint=CONNECTION, outcome=str(status))
            self.write_problem(status, message, headers)

        def answer_early(self, status: int, message: str, headers: dict[str, str]) -> None:
            """Answer and close before the request is complete; an app still reading it sees a disconnect."""
            cycle = self.cycle
            if cycle is None or cycle.response_complete:
                self.refuse(status, message, headers)
                return
            cycle.scope["critic.answered"] = status  # type: ignore[typeddict-unknown-key]  # the app counts it
            cycle.disconnected = True
            cycle.message_event.set()
            if cycle.response_started:
                self.transport.close()
            else:
                self.write_problem(status, message, headers)

        def write_problem(self, status: int, message: str, headers: dict[str, str]) -> None:
            """A JSON error response written straight to the socket (whatever h11's state), then a lingering close:
            the write side is shut, and what the client still sends (the rest of a huge header) is dropped for
            LINGER_S, so the client reads the answer instead of a reset connection."""
            if self.transport.is_closing() or self.answered_early:
                return
            self.answered_early = True
            body = dumps_row(problem_object(status, message))
            phrase = http.HTTPStatus(status).phrase
            lines = [f"HTTP/1.1 {status} {phrase}", "content-type: application/json",
                     f"content-length: {len(body)}", "connection: close",
                     f"{ERROR_HEADER.lower()}: {problem_header(message)}",
                     *(f"{name.lower()}: {value}" for name, value in headers.items())]
            self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self.loop.call_later(LINGER_S, self.transport.close)

    return CriticProtocol


def _header_bytes(request: h11.Request) -> int:
    """The size of a request's header block as sent (request line and header lines)."""
    return (len(request.method) + len(request.target) + 12
            + sum(len(name) + len(value) + 4 for name, value in request.headers))


def _with_reason(response: h11.Response) -> h11.Response:
    """``response`` with its reason phrase followed by the ``X-Critic-Error`` header's message, when it has one."""
    import h11

    name = ERROR_HEADER.lower().encode()
    message = next((value for key, value in response.headers if key == name), None)
    if message is None:
        return response
    try:
        standard = http.HTTPStatus(response.status_code).phrase
    except ValueError:
        return response
    phrase = f"{standard}: ".encode() + message
    return h11.Response(status_code=response.status_code, headers=list(response.headers), reason=phrase,
                        http_version=response.http_version)
