"""Streams served natively by ``ticker serve``'s front protocol (``front.py``,
``native.py``), over raw sockets: what a reader's connection gets, what the path hands
back to the ASGI app (errors, keep-alive connections), the access line, and a burst of
readers connecting at once."""

from __future__ import annotations

import concurrent.futures
import json
import socket

import pytest

from tests.helpers import TickerProcess, readers, wait_until
from tests.sockets import connect, read_until, split_response

pytestmark = pytest.mark.server_per_module


STREAM = b"GET /channels/en/events HTTP/1.1\r\nHost: t\r\n"


def test_a_new_reader_gets_the_stream_head_and_current_items_in_its_first_bytes(
    ticker_server: TickerProcess,
) -> None:
    item = ticker_server.post("en", headline="Already on air")
    sock = connect(ticker_server, STREAM + b"Origin: https://news.example\r\n\r\n")
    try:
        data = read_until(sock, item["id"].encode())
        status, headers, body = split_response(data)
        assert status == b"HTTP/1.1 200 OK"
        assert headers[b"content-type"] == b"text/event-stream; charset=utf-8"
        assert headers[b"cache-control"] == b"no-store"
        assert headers[b"x-content-type-options"] == b"nosniff"
        assert headers[b"x-accel-buffering"] == b"no"
        # The body ends with the connection, as nchan's: no chunks to frame or unframe.
        assert b"transfer-encoding" not in headers and b"content-length" not in headers
        assert headers[b"connection"] == b"close"
        assert headers[b"access-control-allow-origin"] == b"*"
        assert len(headers[b"x-request-id"]) == 32
        # The retry hint, then the item, as its SSE frame, with the head: one write.
        assert body.startswith(b"retry: 500\n\nevent: item\nid: " + item["id"].encode() + b"\n")
        live = ticker_server.post("en", headline="Then this")
        assert f"id: {live['id']}\n".encode() in read_until(sock, live["id"].encode())
    finally:
        sock.close()
    wait_until(lambda: readers(ticker_server) == 0, timeout=5)


def test_a_sane_request_id_is_echoed_and_the_stream_is_logged_when_it_ends(
    ticker_server: TickerProcess,
) -> None:
    sock = connect(ticker_server, STREAM + b"X-Request-ID: reader-42\r\n\r\n")
    try:
        _, headers, _ = split_response(read_until(sock, b"retry:"))
        assert headers[b"x-request-id"] == b"reader-42"
    finally:
        sock.close()
    assert ticker_server.log is not None

    def logged() -> dict[str, object] | None:
        assert ticker_server.log is not None
        for line in ticker_server.log.read_text().splitlines():
            if '"reader-42"' in line and "ticker.access" in line:
                return dict(json.loads(line))
        return None

    line = wait_until(logged, timeout=5)
    assert line["path"] == "/channels/en/events" and line["status"] == 200


def test_a_stream_on_a_keep_alive_connection_is_served_after_other_requests(
    ticker_server: TickerProcess,
) -> None:
    sock = connect(ticker_server, b"GET /livez HTTP/1.1\r\nHost: t\r\n\r\n")
    try:
        assert b'{"status":"ok"}' in read_until(sock, b'"ok"}')
        sock.sendall(STREAM + b"\r\n")
        status, _, _ = split_response(read_until(sock, b"retry:"))
        assert status == b"HTTP/1.1 200 OK"
        item = ticker_server.post("en", headline="On the same connection")
        assert item["id"].encode() in read_until(sock, item["id"].encode())
    finally:
        sock.close()


@pytest.mark.parametrize(
    ("request_head", "status", "error"),
    [
        (b"GET /channels/nope/events HTTP/1.1\r\nHost: t\r\n\r\n", 404, "not_found"),
        (b"GET /channels/en/events?region=NOT%20A%20SLUG HTTP/1.1\r\nHost: t\r\n\r\n", 422, None),
        (b"GET /channels/en/events?max_urgency=0 HTTP/1.1\r\nHost: t\r\n\r\n", 422, None),
        (STREAM + b"Content-Length: 2\r\n\r\nhi", 400, "bad_body"),
        (b"HEAD /channels/en/events HTTP/1.1\r\nHost: t\r\n\r\n", 405, None),
        (b"POST /channels/en/events HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", 405, None),
        (STREAM + b"X-Big: " + b"a" * 20_000 + b"\r\n\r\n", 431, "headers_too_large"),
        (b"GET /channels/en/events HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n", 400, None),
    ],
)
def test_requests_the_stream_path_declines_get_the_apps_own_answer(
    ticker_server: TickerProcess, request_head: bytes, status: int, error: str | None
) -> None:
    sock = connect(ticker_server, request_head)
    try:
        data = read_until(sock, b"\r\n\r\n")
        line, headers, body = split_response(data)
        assert line.startswith(b"HTTP/1.1 %d " % status), data[:200]
        if error is not None:
            length = int(headers[b"content-length"])
            body += read_until(sock, b"}") if len(body) < length else b""
            assert json.loads(body[:length])["error"] == error
    finally:
        sock.close()
    assert readers(ticker_server) == 0


def test_readers_connecting_at_once_each_get_the_ticker_then_the_next_item_once(
    ticker_server: TickerProcess,
) -> None:
    first = ticker_server.post("en", headline="Before the storm")
    count = 200

    def reader() -> socket.socket:
        sock = connect(ticker_server, STREAM + b"\r\n")
        assert first["id"].encode() in read_until(sock, first["id"].encode())
        return sock

    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        socks = list(pool.map(lambda _: reader(), range(count)))
    try:
        wait_until(lambda: readers(ticker_server) == count, timeout=10)
        after = ticker_server.post("en", headline="After the storm")
        # Read on to the item after it: a second copy would have come before that one.
        last = ticker_server.post("en", headline="Calm again")
        for sock in socks:
            data = read_until(sock, f"id: {last['id']}\n".encode())
            assert data.count(f"id: {after['id']}\n".encode()) == 1
            assert data.count(f"id: {last['id']}\n".encode()) == 1
    finally:
        for sock in socks:
            sock.close()
    wait_until(lambda: readers(ticker_server) == 0, timeout=10)
