"""A ``ticker serve`` process's memory under readers: filters that come and go each cost
a bounded amount once they have gone (the opening kept per filter is a cache bounded in
bytes), and an idle reader costs a few kilobytes.

Measured on the server process's resident set (``/proc/PID/status`` ``VmRSS``), over raw
loopback sockets. The ticker has many current items, none of them limited to a region
or a category: every filter's readers are shown the whole ticker, the worst case for a
cache of what each filter is shown."""

from __future__ import annotations

import contextlib
import json
import resource
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.helpers import TickerProcess, metric_readers, wait_until

pytestmark = pytest.mark.timeout(40)

LIVE_MAX = 500  # the most a channel's ticker may show (settings.Channel)
HISTORY = 1000


@pytest.fixture
def ticker_server_env() -> dict[str, str]:
    return {
        "TICKER_CHANNELS": json.dumps(
            [{"name": "en", "live_max_items": LIVE_MAX, "history_max_items": HISTORY}]
        ),
        "TICKER_WRITE_BURST": "2000",
    }


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def _post_items(server: TickerProcess, count: int) -> None:
    """``count`` items through the API, four connections at a time."""
    headers = {"Authorization": f"Bearer {server.token}"}

    def post_some(start: int) -> None:
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as api:
            for n in range(start, count, 4):
                body = {"headline": f"Item {n}: a headline of an ordinary length for a ticker"}
                r = api.post("/channels/en/items", json=body)
                assert r.status_code == 201, r.text

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(post_some, range(4)))


def _stream(port: int, query: str = "") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /channels/en/events%s HTTP/1.1\r\nHost: t\r\n\r\n" % query.encode())
    return sock


def _first_event(sock: socket.socket) -> bytes:
    """What arrives up to the end of the first event (the opening has been built)."""
    data = b""
    while True:
        at = data.find(b"event: ")
        if at >= 0 and data.find(b"\n\n", at) >= 0:
            return data
        part = sock.recv(65536)
        if not part:
            raise AssertionError(f"closed before the first event: {data[:300]!r}")
        data += part


def _items_shown(sock: socket.socket) -> int:
    """How many items a new reader's opening shows (it comes in one write)."""
    data = _first_event(sock)
    sock.settimeout(0.5)
    with contextlib.suppress(TimeoutError):
        while data.count(b"event: item\n") < LIVE_MAX and (part := sock.recv(1 << 20)):
            data += part
    return data.count(b"event: item\n")


def _drain(sock: socket.socket) -> None:
    """Read a stream until it ends (heartbeats, and the rest of its opening)."""
    with contextlib.suppress(OSError):
        while sock.recv(65536):
            pass


def _open_and_close(port: int, queries: list[str]) -> None:
    """One stream per query, one after the other: each read up to its first event
    (an item of the ticker), then closed."""
    for query in queries:
        sock = _stream(port, query)
        try:
            data = _first_event(sock)
        finally:
            sock.close()
        assert data.startswith(b"HTTP/1.1 200 OK\r\n"), data[:200]
        assert b"\r\n\r\nretry: 500\n\nevent: item\nid: " in data, data[:600]


def _open_and_close_all(port: int, queries: list[str], workers: int = 4) -> None:
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda i: _open_and_close(port, queries[i::workers]), range(workers)))


@contextlib.contextmanager
def _descriptors(count: int) -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(count, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_filters_that_come_and_go_leave_the_servers_memory_bounded(
    ticker_server: TickerProcess,
) -> None:
    started = time.monotonic()
    _post_items(ticker_server, HISTORY)
    setup_s = time.monotonic() - started
    assert ticker_server.proc is not None
    pid, port = ticker_server.proc.pid, ticker_server.port
    # One reader stays throughout: the channel's reader (and its current items) too.
    anchor = _stream(port)
    drain = threading.Thread(target=_drain, args=(anchor,), daemon=True)
    try:
        _first_event(anchor)
        drain.start()
        # Every filter is shown the whole ticker: its items are for every region.
        whole = _stream(port, "?region=a&category=b")
        try:
            assert _items_shown(whole) == LIVE_MAX
        finally:
            whole.close()
        _open_and_close_all(port, [f"?region=warm{n}&category=up{n}" for n in range(200)])
        wait_until(lambda: metric_readers(ticker_server) == 1, timeout=10)
        before = _rss_kb(pid)
        started = time.monotonic()
        # Each opening is the whole ticker (~170 KB): 2,000 of them are 40 times the
        # cache's bound (fanout/shown.py), so a cache that kept them would show.
        count = 2000
        _open_and_close_all(port, [f"?region=a{n}&category=b{n}" for n in range(count)])
        streams_s = time.monotonic() - started
        wait_until(lambda: metric_readers(ticker_server) == 1, timeout=10)
        after = _rss_kb(pid)
    finally:
        with contextlib.suppress(OSError):
            anchor.shutdown(socket.SHUT_RDWR)
        anchor.close()
    drain.join(5)
    wait_until(lambda: metric_readers(ticker_server) == 0, timeout=10)
    growth_mb = (after - before) / 1024
    print(
        f"\n{HISTORY} items posted in {setup_s:.1f}s; {count} distinct filters opened and "
        f"closed in {streams_s:.1f}s ({streams_s / count * 1000:.2f} ms each); server RSS "
        f"{before / 1024:.1f} -> {after / 1024:.1f} MiB ({growth_mb:+.1f} MiB)"
    )
    assert growth_mb <= 20


def test_an_idle_reader_costs_the_server_a_few_kilobytes(ticker_server: TickerProcess) -> None:
    for n in range(3):
        ticker_server.post("en", headline=f"On air {n}")
    assert ticker_server.proc is not None
    pid, port = ticker_server.proc.pid, ticker_server.port
    count = 2000
    socks: list[socket.socket] = []
    with _descriptors(count + 200):
        try:
            # A few readers first: the channel's reader, the allocator's pools are warm.
            for _ in range(20):
                socks.append(_stream(port))
                _first_event(socks[-1])
            before = _rss_kb(pid)
            started = time.monotonic()
            fresh = [_stream(port) for _ in range(count)]
            socks.extend(fresh)
            for sock in fresh:
                assert _first_event(sock).startswith(b"HTTP/1.1 200 OK\r\n")
            wait_until(lambda: metric_readers(ticker_server) == count + 20, timeout=10)
            after = _rss_kb(pid)
            open_s = time.monotonic() - started
        finally:
            for sock in socks:
                sock.close()
        wait_until(lambda: metric_readers(ticker_server) == 0, timeout=10)
    per_reader_kb = (after - before) / count
    print(
        f"\n{count} idle readers opened in {open_s:.1f}s: server RSS "
        f"{before / 1024:.1f} -> {after / 1024:.1f} MiB, {per_reader_kb:.2f} KiB per reader"
    )
    assert per_reader_kb <= 3
