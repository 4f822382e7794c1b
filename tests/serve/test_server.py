"""Before the app: header size, header and body timeouts, the connection bound and uvicorn's own answers, tried with
raw sockets on 127.0.0.1 (slowloris clients, huge headers, malformed requests). Every read is bounded."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from critic.serve import ServeSettings, create_app

from .fakes import text_judge
from .support import serving, wait_until
import contextlib

KEY = "s3cret-key"
READ_S = 10.0  # the longest any read waits: far past the server's own timeouts below
PAIR_BODY = json.dumps({"pairs": [{"prompt": "q", "response_a": "a", "response_b": "b"}]}).encode()


@pytest.fixture(scope="module")
def server():
    settings = ServeSettings(api_key=KEY, max_header_bytes=4096, header_timeout_s=0.5, body_timeout_s=0.5)
    app = create_app(text_judge(), settings)
    with serving(app) as url:
        yield int(url.rsplit(":", 1)[1]), app.state.service.metrics


def exchange(port: int, data: bytes) -> bytes:
    """Send ``data`` (as much as the server takes) and read until the server closes (at most READ_S)."""
    with socket.create_connection(("127.0.0.1", port), timeout=READ_S) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def answer(received: bytes) -> tuple[int, dict[str, str], dict]:
    """(status, headers, JSON body) of the one response in ``received``."""
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, json.loads(body)


@pytest.mark.parametrize("size", [4200, 1 << 20], ids=["just-over", "1MiB"])
def test_a_header_block_over_the_limit_gets_431_in_json_and_the_connection_closed(server, size):
    """Just over the limit (it arrives in one read) or far over it (it does not): 431 either way."""
    port, metrics = server
    received = exchange(port, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size + b"\r\n\r\n")
    status, headers, body = answer(received)
    assert status == 431 and headers["content-type"] == "application/json"
    assert body == {"error": {"status": 431, "message": "the request could not be read as HTTP/1.1: the request's "
                                                        "header block is over 4096 bytes"}}
    assert metrics.requests.value(endpoint="(connection)", outcome="431") >= 1
    just_under = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 3900 + b"\r\nConnection: close\r\n\r\n"
    assert exchange(port, just_under).startswith(b"HTTP/1.1 200 ")


@pytest.mark.parametrize("sent", [b"", b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: "], ids=["nothing", "half"])
def test_headers_that_do_not_arrive_in_time_get_408_and_the_connection_closed(server, sent):
    port, metrics = server
    before = metrics.requests.value(endpoint="(connection)", outcome="408")
    status, _, body = answer(exchange(port, sent))  # exchange returns: the server closed the connection
    assert status == 408 and body["error"]["message"] == "the request's headers did not arrive within 0.5 s"
    assert metrics.requests.value(endpoint="(connection)", outcome="408") == before + 1


def test_a_half_sent_body_gets_408_and_is_counted_on_its_endpoint(server):
    port, metrics = server
    head = (b"POST /v1/compare HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() +
            b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(PAIR_BODY))
    status, _, body = answer(exchange(port, head + PAIR_BODY[:10]))
    assert status == 408 and body["error"]["message"] == "the request's body did not arrive within 0.5 s"
    wait_until(lambda: metrics.requests.value(endpoint="/v1/compare", outcome="408") == 1, "the app counts it")


def test_a_body_still_trickling_after_its_answer_does_not_hold_the_connection(server):
    """Refused before its body was read (no key: 401), the rest of the body is not waited for past the timeout."""
    port, _ = server
    head = b"POST /v1/compare HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(PAIR_BODY)
    received = exchange(port, head + PAIR_BODY[:10])  # returns once the server has closed the connection
    assert received.startswith(b"HTTP/1.1 401 ") and received.count(b"HTTP/1.1") == 1


def test_a_malformed_request_gets_a_json_400_with_the_reason(server):
    port, metrics = server
    status, headers, body = answer(exchange(port, b"GET / HTTP/1.1\r\nHost x\r\n\r\n"))
    assert status == 400 and headers["content-type"] == "application/json"
    assert body["error"]["message"].startswith("the request could not be read as HTTP/1.1: illegal header line")
    assert headers["x-critic-error"] == body["error"]["message"][:300] or headers["x-critic-error"].endswith("...")
    assert metrics.requests.value(endpoint="(connection)", outcome="400") == 1


def test_past_max_connections_a_connection_gets_503_and_is_closed_and_the_others_are_served():
    app = create_app(text_judge(), ServeSettings(max_connections=4))
    with serving(app) as url:
        port = int(url.rsplit(":", 1)[1])
        held = [socket.create_connection(("127.0.0.1", port), timeout=READ_S) for _ in range(4)]
        try:
            status, headers, body = answer(exchange(port, b""))
            assert status == 503 and int(headers["retry-after"]) >= 1
            assert body["error"]["message"].startswith("the server holds 4 connections, its limit")
            held[0].sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")  # the held ones are served
            assert held[0].recv(4096).startswith(b"HTTP/1.1 200 ")
        finally:
            for sock in held:
                sock.close()
        assert httpx.get(f"{url}/health", timeout=READ_S).status_code == 200  # room again once they have gone
    assert app.state.service.metrics.requests.value(endpoint="(connection)", outcome="503") == 1
