"""Streams over ticker's own uvicorn protocol, in a real ``ticker serve`` (uvloop):
heartbeats, pipelined requests, and requests a stream refuses."""

from __future__ import annotations

import contextlib
import socket
import time

import httpx
import pytest

from tests.helpers import TickerProcess, wait_until


@pytest.fixture
def ticker_server_env() -> dict[str, str]:
    return {"TICKER_HEARTBEAT_S": "0.3"}


def _open_stream(server: TickerProcess, extra: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.sendall(b"GET /channels/en/events HTTP/1.1\r\nHost: t\r\n\r\n" + extra)
    return sock


def test_idle_streams_get_every_heartbeat(ticker_server: TickerProcess) -> None:
    # uvloop fires timers on whole milliseconds; a heartbeat decided by comparing clocks
    # could miss its deadline by a hair and then never come again.
    socks = [_open_stream(ticker_server) for _ in range(40)]
    try:
        seen = [b""] * len(socks)
        deadline = time.monotonic() + 3.2
        for sock in socks:
            sock.settimeout(0.05)
        while time.monotonic() < deadline:
            for n, sock in enumerate(socks):
                with contextlib.suppress(TimeoutError):
                    seen[n] += sock.recv(65536)
        beats = [data.count(b":\n\n") for data in seen]
        # 3.2 s at 0.3 s per beat is ten; allow for scheduling on a busy machine.
        assert min(beats) >= 7, beats
    finally:
        for sock in socks:
            sock.close()


def _readers(server: TickerProcess) -> int:
    return int(httpx.get(f"{server.url}/stats", timeout=5).json()["en"]["readers"])


def test_a_stream_with_a_pipelined_request_behind_it_frees_its_slot_on_close(
        ticker_server: TickerProcess) -> None:
    sock = _open_stream(ticker_server, b"GET /livez HTTP/1.1\r\nHost: t\r\n\r\n")
    wait_until(lambda: _readers(ticker_server) == 1, timeout=5)
    sock.recv(4096)
    sock.close()
    # uvicorn tells only the newest request of a connection; the stream must learn too.
    wait_until(lambda: _readers(ticker_server) == 0, timeout=5)


def test_head_of_a_stream_is_405(ticker_server: TickerProcess) -> None:
    r = httpx.head(f"{ticker_server.url}/channels/en/events", timeout=5)
    assert r.status_code == 405
    assert _readers(ticker_server) == 0


def test_a_stream_request_with_a_body_is_400(ticker_server: TickerProcess) -> None:
    r = httpx.request("GET", f"{ticker_server.url}/channels/en/events", content=b"x" * 70_000,
                      timeout=5)
    assert r.status_code == 400
    assert r.json()["error"] == "bad_body"
    assert _readers(ticker_server) == 0


@pytest.mark.parametrize("ticker_server_env", [{"TICKER_HEARTBEAT_S": "30"}])
def test_a_pipelined_stream_is_released_when_the_client_closes_not_at_the_heartbeat(
        ticker_server: TickerProcess) -> None:
    # uvicorn stops reading while a request waits behind a running one, so the close used
    # to go unnoticed until the next heartbeat's write failed (here 30 s away).
    sock = _open_stream(ticker_server, b"GET /livez HTTP/1.1\r\nHost: t\r\n\r\n")
    wait_until(lambda: _readers(ticker_server) == 1, timeout=5)
    sock.recv(4096)
    sock.close()
    wait_until(lambda: _readers(ticker_server) == 0, timeout=3)
    # The stream ended without an error in the log.
    log = ticker_server.log.read_text()  # type: ignore[union-attr]
    assert "Traceback" not in log
    assert "without completing response" not in log


def _read_until(sock: socket.socket, marker: bytes, timeout: float = 5) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    sock.settimeout(0.2)
    while marker not in data and time.monotonic() < deadline:
        with contextlib.suppress(TimeoutError):
            part = sock.recv(65536)
            if not part:
                break
            data += part
    return data


def test_an_http_1_0_stream_has_a_close_delimited_body(ticker_server: TickerProcess) -> None:
    sock = socket.create_connection(("127.0.0.1", ticker_server.port), timeout=5)
    try:
        sock.sendall(b"GET /channels/en/events HTTP/1.0\r\nHost: t\r\n\r\n")
        head = _read_until(sock, b"\r\n\r\n")
        status, _, rest = head.partition(b"\r\n")
        assert status.startswith(b"HTTP/1.1 200")
        headers = rest.split(b"\r\n\r\n")[0].lower()
        assert b"transfer-encoding" not in headers
        assert b"content-length" not in headers
        assert b"connection: close" in headers
        item = ticker_server.post("en", headline="for an old client")
        body = _read_until(sock, item["id"].encode())
        # The frame as it is, with no chunk sizes around it.
        assert f"event: item\nid: {item['id']}\n".encode() in body
        assert b"\r\n" not in body
    finally:
        sock.close()
    # Only HTTP/1.1 readers are written to directly; this one was served, and is gone.
    wait_until(lambda: _readers(ticker_server) == 0, timeout=5)
