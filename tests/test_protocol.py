"""Streams over ticker's own uvicorn protocol, in a real ``ticker serve`` (uvloop):
heartbeats, pipelined requests, HTTP/1.0, and requests a stream refuses; then the same
seam in-process, driven with a mock transport, with the subscriber and batch above it."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from uvicorn.server import ServerState

from tests.helpers import TickerProcess, readers, wait_until
from tests.sockets import STREAM_REQUEST, connect, read_until
from ticker.domain.events import EVERYTHING, Event
from ticker.fanout.socket import Socket, chunk
from ticker.fanout.subscriber import Batch, Subscriber
from ticker.http.deadline import HeadDeadlines
from ticker.http.door import DOOR, SOCKET, Door
from ticker.http.eventstream import EventStream
from ticker.http.protocol import HttpProtocol
from ticker.http.rules import Rules


@pytest.fixture
def ticker_server_env() -> dict[str, str]:
    return {"TICKER_HEARTBEAT_S": "0.3"}


def test_idle_streams_get_every_heartbeat(ticker_server: TickerProcess) -> None:
    # uvloop fires timers on whole milliseconds; a heartbeat decided by comparing clocks
    # could miss its deadline by a hair and then never come again.
    socks = [connect(ticker_server, STREAM_REQUEST) for _ in range(40)]
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


def _assert_stream_only(sock: socket.socket) -> None:
    """The stream's head has come, and nothing of the request pipelined behind it: that
    one waits its turn (HTTP/1.1 answers in order), and a stream does not end."""
    data = read_until(sock, b"\r\n\r\n")
    data += read_until(sock, b"HTTP/1.1", timeout=0.5)  # what else comes soon, if anything
    assert data.startswith(b"HTTP/1.1 200 OK\r\n"), data[:300]
    assert b"text/event-stream" in data.partition(b"\r\n\r\n")[0].lower(), data[:300]
    assert data.count(b"HTTP/1.1") == 1, data[:600]


def test_a_stream_with_a_pipelined_request_behind_it_frees_its_slot_on_close(
    ticker_server: TickerProcess,
) -> None:
    sock = connect(ticker_server, STREAM_REQUEST + b"GET /livez HTTP/1.1\r\nHost: t\r\n\r\n")
    wait_until(lambda: readers(ticker_server) == 1, timeout=5)
    _assert_stream_only(sock)
    sock.close()
    # uvicorn tells only the newest request of a connection; the stream must learn too.
    wait_until(lambda: readers(ticker_server) == 0, timeout=5)


def test_head_of_a_stream_is_405(ticker_server: TickerProcess) -> None:
    r = httpx.head(f"{ticker_server.url}/channels/en/events", timeout=5)
    assert r.status_code == 405
    assert readers(ticker_server) == 0


def test_a_stream_request_with_a_body_is_400(ticker_server: TickerProcess) -> None:
    r = httpx.request(
        "GET", f"{ticker_server.url}/channels/en/events", content=b"x" * 70_000, timeout=5
    )
    assert r.status_code == 400
    assert r.json()["error"] == "bad_body"
    assert readers(ticker_server) == 0


@pytest.mark.parametrize("ticker_server_env", [{"TICKER_HEARTBEAT_S": "30"}])
def test_a_pipelined_stream_is_released_when_the_client_closes_not_at_the_heartbeat(
    ticker_server: TickerProcess,
) -> None:
    # uvicorn stops reading while a request waits behind a running one, so the close used
    # to go unnoticed until the next heartbeat's write failed (here 30 s away).
    sock = connect(ticker_server, STREAM_REQUEST + b"GET /livez HTTP/1.1\r\nHost: t\r\n\r\n")
    wait_until(lambda: readers(ticker_server) == 1, timeout=5)
    _assert_stream_only(sock)
    sock.close()
    wait_until(lambda: readers(ticker_server) == 0, timeout=3)
    # The stream ended without an error in the log.
    log = ticker_server.log.read_text()  # type: ignore[union-attr]
    assert "Traceback" not in log
    assert "without completing response" not in log


def test_an_http_1_0_stream_has_a_close_delimited_body(ticker_server: TickerProcess) -> None:
    sock = socket.create_connection(("127.0.0.1", ticker_server.port), timeout=5)
    try:
        sock.sendall(b"GET /channels/en/events HTTP/1.0\r\nHost: t\r\n\r\n")
        head = read_until(sock, b"\r\n\r\n")
        status, _, rest = head.partition(b"\r\n")
        assert status.startswith(b"HTTP/1.1 200")
        headers = rest.split(b"\r\n\r\n")[0].lower()
        assert b"transfer-encoding" not in headers
        assert b"content-length" not in headers
        assert b"connection: close" in headers
        item = ticker_server.post("en", headline="for an old client")
        body = read_until(sock, item["id"].encode())
        # The frame as it is, with no chunk sizes around it.
        assert f"event: item\nid: {item['id']}\n".encode() in body
        assert b"\r\n" not in body
    finally:
        sock.close()
    # Only HTTP/1.1 readers are written to directly; this one was served, and is gone.
    wait_until(lambda: readers(ticker_server) == 0, timeout=5)


# -- the seam in-process: the protocol driven with a mock transport (as uvicorn's own
# tests/protocols/test_http.py does), on the running loop; milliseconds each -------------


class MockTransport:
    def __init__(self) -> None:
        self.buffer = b""
        self.closed = False
        self.read_paused = False

    def get_extra_info(self, key: str) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(key)

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        self.buffer += data

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.read_paused = True

    def resume_reading(self) -> None:
        self.read_paused = False

    def is_closing(self) -> bool:
        return self.closed

    def set_protocol(self, protocol: Any) -> None:
        pass


class StreamApp:
    """An ASGI app that answers ``/stream`` with an endless body (until told to end) and
    anything else with a short one; it keeps each request's ``ticker.socket``."""

    def __init__(self) -> None:
        self.sockets: list[Socket] = []
        self.end = asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        socket = scope["extensions"][SOCKET]
        self.sockets.append(socket)
        if scope["path"] == "/stream":
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")],
                }
            )
            socket.started = True
            await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
            await self.end.wait()
            if not socket.gone:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            socket.ended = True
            return
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
        )
        await send({"type": "http.response.body", "body": b"ok"})


def make_protocol(app: Any, *, max_header_bytes: int = 4096) -> tuple[HttpProtocol, MockTransport]:
    config = uvicorn.Config(app=app, ws="none", lifespan="off", log_level="warning")
    protocol = HttpProtocol(
        config=config,
        server_state=ServerState(),
        app_state={
            DOOR: Door(Rules(frozenset({"en"}), max_header_bytes), HeadDeadlines(10.0), None)
        },
        _loop=asyncio.get_running_loop(),
    )
    transport = MockTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.mark.anyio
async def test_a_request_head_over_the_limit_is_refused_as_it_arrives() -> None:
    app = StreamApp()
    protocol, transport = make_protocol(app, max_header_bytes=4096)
    protocol.data_received(b"GET /x HTTP/1.1\r\nHost: t\r\nX-Big: ")
    piece = b"a" * 1024
    fed = 0
    while not transport.closed:
        protocol.data_received(piece)
        fed += len(piece)
        assert fed < 16 * 1024, "still reading a head far over the limit"
    protocol.data_received(piece * 64)  # ignored: nothing more is parsed or kept
    await settle()
    assert transport.buffer.startswith(b"HTTP/1.1 431 ")
    assert b"connection: close" in transport.buffer
    assert transport.buffer.endswith(b'"request headers are larger than 4096 bytes"}')
    assert app.sockets == []  # the app never saw it


@pytest.mark.anyio
async def test_a_head_within_the_limit_is_served() -> None:
    app = StreamApp()
    protocol, transport = make_protocol(app, max_header_bytes=4096)
    for n in range(30):  # the head in small reads, under the limit in total
        protocol.data_received(
            b"GET /x HTTP/1.1\r\nHost: t\r\n" if n == 0 else b"X-H%d: %s\r\n" % (n, b"v" * 100)
        )
    protocol.data_received(b"\r\n")
    await settle()
    assert transport.buffer.startswith(b"HTTP/1.1 200 ")
    assert not transport.closed


@pytest.mark.anyio
async def test_a_request_pipelined_behind_a_stream_keeps_the_connection_read() -> None:
    app = StreamApp()
    protocol, transport = make_protocol(app)
    protocol.data_received(
        b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\nGET /x HTTP/1.1\r\nHost: t\r\n\r\n"
    )
    await settle()
    # uvicorn pauses reading here; ticker's protocol reads on, so the close is seen.
    assert not transport.read_paused
    protocol.data_received(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n")  # held, not lost
    [stream] = app.sockets
    assert stream.writable()
    protocol.connection_lost(None)
    assert stream.gone and not stream.writable()
    app.end.set()
    await settle()


@pytest.mark.anyio
async def test_requests_held_behind_a_response_are_answered_after_it() -> None:
    app = StreamApp()
    protocol, transport = make_protocol(app)
    protocol.data_received(
        b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\nGET /x HTTP/1.1\r\nHost: t\r\n\r\n"
    )
    await settle()
    protocol.data_received(b"GET /y HTTP/1.1\r\nHost: t\r\n\r\n")
    app.end.set()
    await settle()
    assert transport.buffer.count(b"HTTP/1.1 200 ") == 3
    assert [s.direct for s in app.sockets] == [True, True, True]


@pytest.mark.anyio
async def test_a_long_keep_alive_connection_keeps_nothing_per_answered_request() -> None:
    """A CMS posting thousands of items over one connection: each answered request is
    forgotten (it was kept, and the whole list scanned, per request: quadratic)."""

    async def short(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-length", b"2")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"ok"})

    protocol, transport = make_protocol(short)
    for _ in range(2000):
        protocol.data_received(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
        await settle()
    assert transport.buffer.count(b"HTTP/1.1 200 ") == 2000
    gc.collect()
    assert sum(isinstance(o, Socket) for o in gc.get_objects()) <= 2


@pytest.mark.anyio
async def test_an_http_1_0_response_without_a_length_is_close_delimited() -> None:
    app = StreamApp()
    protocol, transport = make_protocol(app)
    protocol.data_received(b"GET /stream HTTP/1.0\r\n\r\n")
    await settle()
    [socket] = app.sockets
    assert not socket.direct and not socket.writable()  # direct writes only on HTTP/1.1
    app.end.set()
    await settle()
    head, _, body = transport.buffer.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head.lower()
    assert b"connection: close" in head.lower()
    assert body == b"data: 1\n\n"
    assert transport.closed


@pytest.mark.anyio
async def test_flow_control_pauses_direct_writes() -> None:
    app = StreamApp()
    protocol, transport = make_protocol(app)
    protocol.data_received(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
    await settle()
    [socket] = app.sockets
    assert socket.writable()
    protocol.pause_writing()
    assert not socket.writable()
    protocol.resume_writing()
    assert socket.writable()
    app.end.set()
    await settle()
    assert socket.done and not socket.writable()


def _event(n: int) -> Event:
    frame = b"id: %d-0\nevent: item\ndata: {}\n\n" % n
    return Event(key=(n, 0), frame=frame, regions=frozenset(), categories=frozenset(), urgency=5)


def test_a_caught_up_subscriber_writes_one_framed_chunk_per_batch() -> None:
    transport = MockTransport()
    socket = Socket(transport, http_version="1.1")  # type: ignore[arg-type]
    socket.started = True
    sub = Subscriber(EVERYTHING, limit=10)
    sub.go_direct(socket)
    batch = Batch([_event(1), _event(2)], (1, 0), (2, 0))
    sub.offer(batch)
    body = _event(1).frame + _event(2).frame
    assert transport.buffer == b"%x\r\n%s\r\n" % (len(body), body)
    assert sub.last_sent == (2, 0)
    # Every socket with the same filter and framing shares the bytes, framed once.
    assert batch.wire(EVERYTHING, (0, 0), chunk) is batch.wire(EVERYTHING, (0, 0), chunk)


def test_a_paused_socket_sends_its_subscriber_to_the_queue() -> None:
    transport = MockTransport()
    socket = Socket(transport, http_version="1.1")  # type: ignore[arg-type]
    socket.started = True
    sub = Subscriber(EVERYTHING, limit=3)
    sub.go_direct(socket)
    socket.paused = True
    sub.offer(Batch([_event(1)], (1, 0), (1, 0)))
    assert transport.buffer == b"" and sub.socket is None
    sub.offer(Batch([_event(2), _event(3), _event(4)], (2, 0), (4, 0)))
    assert sub.cut_off  # more than the limit behind: cut off, memory bounded


def test_an_event_stream_honours_starlettes_response_contract() -> None:
    async def frames() -> AsyncIterator[bytes]:
        yield b""

    response = EventStream(frames(), send_timeout=1, headers={"Access-Control-Allow-Origin": "*"})
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["access-control-allow-origin"] == "*"
    assert "content-length" not in response.headers


class EchoApp:
    """Answers with the request body it read (a POST's JSON, say)."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [(b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


H2C_POST = (
    b"POST /x HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
    b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nContent-Type: application/json\r\n"
    b'Content-Length: 24\r\n\r\n{"headline": "By curl"}\n'
)


@pytest.mark.anyio
@pytest.mark.parametrize("split", [None, len(H2C_POST) - 24, len(H2C_POST) - 10])
async def test_an_upgrade_offer_is_ignored_and_its_body_still_reaches_the_app(
    split: int | None,
) -> None:
    """``curl --http2 -d ...``: httptools hands the body over as the new protocol's bytes;
    the request must still be served as HTTP/1.1, body and all, then the connection ends."""
    protocol, transport = make_protocol(EchoApp())
    if split is None:
        protocol.data_received(H2C_POST)
    else:
        protocol.data_received(H2C_POST[:split])
        await settle()
        protocol.data_received(H2C_POST[split:])
    await settle()
    head, _, body = transport.buffer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"connection: close" in head.lower()
    assert body == b'{"headline": "By curl"}\n'
    assert transport.closed
