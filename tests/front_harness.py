"""ticker's front protocol (``ticker.http.front.Front``) driven in-process, byte by byte,
as uvicorn's own tests drive its protocols (tests/protocols/test_http.py): a mock
transport, the real app and its lifespan state, and the running event loop.

A ``Conn`` is one client connection: bytes go to whichever protocol the transport has
now (``Front``, then ``HttpProtocol`` after a hand-off, as a real transport would), and
``lose`` tells that protocol the connection is gone, once."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from uvicorn.server import ServerState

from ticker.domain.models import ItemIn
from ticker.http.app import Streams, create_app
from ticker.http.door import DOOR, Door
from ticker.http.front import Front
from ticker.http.streams import NativeStreams
from ticker.ops.logs import RequestId
from ticker.settings import Settings

PEER = ("127.0.0.1", 5000)


class MockTransport:
    """What a protocol sees of a socket. Once closed (or aborted) it delivers no more
    reads, as asyncio's transports stop reading at ``close``; writes after the close are
    kept apart (``late``), or raise with ``raise_when_closed`` (uvloop's behaviour)."""

    def __init__(self, *, raise_when_closed: bool = False, peer: tuple[str, int] = PEER) -> None:
        self.peer = peer
        self.buffer = bytearray()
        self.late = bytearray()  # written after the close
        self.closed = False
        self.aborted = False
        self.read_paused = False
        self.raise_when_closed = raise_when_closed
        self.held = bytearray()  # read while paused, delivered on resume
        self._protocol: Any = None

    def get_extra_info(self, key: str, default: Any = None) -> Any:
        return {"peername": self.peer, "sockname": ("127.0.0.1", 8000)}.get(key, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.closed:
            if self.raise_when_closed:
                raise RuntimeError("write to a closed transport")
            self.late += data
            return
        self.buffer += data

    def writelines(self, lines: Sequence[bytes]) -> None:
        for line in lines:
            self.write(line)

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = self.aborted = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.read_paused = True

    def resume_reading(self) -> None:
        self.read_paused = False
        if self.held:
            asyncio.get_running_loop().call_soon(self._deliver_held)

    def _deliver_held(self) -> None:
        if self.held and not self.read_paused and not self.closed:
            data, self.held = bytes(self.held), bytearray()
            self._protocol.data_received(data)

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def set_protocol(self, protocol: Any) -> None:
        self._protocol = protocol

    def get_protocol(self) -> Any:
        return self._protocol


@dataclass
class Reply:
    """A response as the client reads it: the first status line, its headers (names in
    lower case; the first of each name), and everything after the head."""

    status: str
    headers: dict[str, str]
    body: bytes
    status_lines: int  # how many responses the bytes hold (status lines seen)


def parse_reply(data: bytes | bytearray) -> Reply | None:
    head, sep, body = bytes(data).partition(b"\r\n\r\n")
    if not sep:
        return None
    status, *lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    return Reply(status, headers, body, bytes(data).count(b"HTTP/1."))


def complete(transport: MockTransport, *, head_only: bool = False) -> bool:
    """Whether the client has a whole answer: a stream's head and its first bytes, a
    body of the length announced (only the head, for ``HEAD``), or a close."""
    if transport.closed:
        return True
    reply = parse_reply(transport.buffer)
    if reply is None:
        return False
    if head_only:
        return True
    if reply.headers.get("content-type", "").startswith("text/event-stream"):
        return b"retry:" in reply.body
    length = reply.headers.get("content-length")
    return length is not None and len(reply.body) >= int(length)


async def until(
    predicate: Callable[[], object], timeout: float = 3.0, what: str | Callable[[], str] = ""
) -> None:
    """Run the loop until ``predicate()`` holds: a few bare turns first (most answers
    need no more), then short sleeps, up to ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    turns = 0
    while not predicate():
        if loop.time() > deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"not within {timeout}s: {said or predicate}")
        turns += 1
        await asyncio.sleep(0 if turns < 30 else 0.001)


@dataclass
class Harness:
    app: Streams
    state: dict[str, Any]
    config: uvicorn.Config
    server_state: ServerState = field(default_factory=ServerState)
    conns: list[Conn] = field(default_factory=list)  # connections not lost yet

    @property
    def door(self) -> Door:
        door = self.state[DOOR]
        assert isinstance(door, Door)
        return door

    @property
    def streams(self) -> NativeStreams:
        streams = self.door.streams
        assert streams is not None
        return streams

    def slots(self, channel: str = "en") -> tuple[int, int]:
        """(connections admitted, readers of ``channel``) in the hub."""
        hub = self.streams.hub
        return hub.connections, hub.subscriber_count(channel)

    def connect(self, transport: MockTransport | None = None) -> Conn:
        return Conn(self, transport or MockTransport())

    async def quiet(self, slots: tuple[int, int], tasks: int = 0, timeout: float = 3.0) -> None:
        """Wait until nothing of a lost connection is left: the hub back to ``slots``,
        no head deadline, ``tasks`` ASGI tasks (those of responses still running), and
        the server holding exactly the protocols of the connections still open."""
        await until(
            lambda: (
                self.slots() == slots
                and len(self.door.deadlines) == 0
                and len(self.server_state.tasks) == tasks
                and self.server_state.connections == {c.protocol for c in self.conns}
            ),
            timeout,
            what=lambda: (
                f"slots {self.slots()} (want {slots}), deadlines {len(self.door.deadlines)},"
                f" connections {len(self.server_state.connections)},"
                f" tasks {len(self.server_state.tasks)}"
            ),
        )

    async def post(self, headline: str, channel: str = "en", **fields: Any) -> str:
        """Publish an item through the app's desk; its URI."""
        desk = self.app.app.state.services.desk
        item, _ = await desk.post(channel, ItemIn(headline=headline, **fields), author="t")
        return str(item.uri)


class Conn:
    """One client connection through ``Front``."""

    def __init__(self, harness: Harness, transport: MockTransport) -> None:
        self.harness = harness
        self.transport = transport
        self.front = Front(
            config=harness.config,
            server_state=harness.server_state,
            app_state=harness.state,
            _loop=asyncio.get_running_loop(),
        )
        self.lost = False
        harness.conns.append(self)
        transport.set_protocol(self.front)
        self.front.connection_made(transport)  # type: ignore[arg-type]

    @property
    def protocol(self) -> Any:
        return self.transport.get_protocol()

    def feed(self, data: bytes) -> None:
        """One read, to the protocol that has the connection now; nothing once the
        transport is closed, held while reading is paused."""
        transport = self.transport
        if transport.closed or not data:
            return
        if transport.read_paused:
            transport.held += data
            return
        self.protocol.data_received(data)

    def feed_parts(self, parts: Sequence[bytes]) -> None:
        for part in parts:
            self.feed(part)

    def lose(self) -> None:
        """The connection is gone (the client closed, or after our close): the
        transport tells its current protocol, once."""
        assert not self.lost
        self.lost = True
        self.harness.conns.remove(self)
        self.transport.closed = True
        self.protocol.connection_lost(None)

    def reply(self) -> Reply | None:
        return parse_reply(self.transport.buffer)

    async def answered(self, timeout: float = 3.0, *, head_only: bool = False) -> Reply:
        await until(
            lambda: complete(self.transport, head_only=head_only), timeout, what="a whole answer"
        )
        reply = self.reply()
        assert reply is not None, f"no response head; got {bytes(self.transport.buffer)[:200]!r}"
        return reply


@contextlib.asynccontextmanager
async def running(settings: Settings, *, logged: bool = False) -> AsyncIterator[Harness]:
    """The app built from ``settings``, inside its lifespan, with a uvicorn config and
    server state for its protocols; ``logged``: served as ``ticker serve`` serves it,
    with request IDs and the access line (``logs.RequestId``)."""
    app = create_app(settings)
    async with app.app.router.lifespan_context(app.app) as state:
        assert isinstance(state, dict)
        served = RequestId(app) if logged else app
        # As `ticker serve`: X-Forwarded-For is ticker's to read (forwarded.py), not uvicorn's.
        config = uvicorn.Config(
            app=served, ws="none", lifespan="off", log_level="warning", proxy_headers=False
        )
        config.load()
        # The fleet's first report, cancelled in flight by a quick exit, would hold the
        # lifespan's end for half a second (``tasks.stop``): let it land first.
        store, ttl_ms = app.app.state.services.store, int(settings.fleet_ttl_s * 1000)
        for _ in range(200):
            if await store.fleet.members(now_ms=int(time.time() * 1000), ttl_ms=ttl_ms):
                break
            await asyncio.sleep(0.005)
        for _ in range(5):
            await asyncio.sleep(0)
        yield Harness(app, state, config)
