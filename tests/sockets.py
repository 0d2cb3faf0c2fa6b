"""Raw sockets to a ticker: what a client's connection sends and gets, byte for byte."""

from __future__ import annotations

import contextlib
import socket
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.helpers import TickerProcess


def read_until(sock: socket.socket, marker: bytes, timeout: float = 5) -> bytes:
    """What a raw socket receives until ``marker`` has come, it closes, or ``timeout``."""
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


STREAM_REQUEST = b"GET /channels/en/events HTTP/1.1\r\nHost: t\r\n\r\n"


def connect(server: TickerProcess, data: bytes = b"", timeout: float = 5) -> socket.socket:
    """A raw connection to ``server``, ``data`` sent on it (nothing if empty)."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    if data:
        sock.sendall(data)
    return sock


def split_response(data: bytes) -> tuple[bytes, dict[bytes, bytes], bytes]:
    """Raw response bytes as (status line, headers, the rest): names in lower case, the
    first of each name kept."""
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers: dict[bytes, bytes] = {}
    for line in lines:
        name, _, value = line.partition(b":")
        headers.setdefault(name.strip().lower(), value.strip())
    return status, headers, body


def open_streams(port: int, count: int, *, timeout: float = 10) -> list[socket.socket]:
    """``count`` raw SSE connections, each past its ``200`` status line."""
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(STREAM_REQUEST)
        socks.append(s)
    for s in socks:
        s.settimeout(timeout)
        assert s.recv(20).startswith(b"HTTP/1.1 200")
    return socks
