"""Streams served by ticker's protocol itself, ahead of the ASGI cycle.

Why: under plain ASGI a connecting reader costs a task, a scope, the middleware chain,
uvicorn's header building, two writes and a timeout per send; measured, about four
fifths of what a connect cost, and most of a reader's memory (bench/findings.md). A
storm of reconnecting browsers is made of one request, ``GET /channels/{ch}/events``,
so the protocol (``protocol.py``) hands it here once its head is parsed. The reader is
registered with the hub, its opening (``retry:`` and the current items) goes out with
the response head in one write, and from then on the fan-out writes to it
(``subscriber.py``). Nothing waits per reader: no task, no coroutine, no timer. A
resume, or a snapshot that must be read first, runs in a short task that ends once the
reader is live; heartbeats are one timer for every stream of the process.

What stays on the ASGI path (``app.Streams``, with the same rules and bytes): anything
answered with an error (unknown channel, bad filter, a body, HEAD, over capacity,
oversized headers), HTTP/1.0, percent-encoded paths, a request pipelined behind
another, and every stream when ``TICKER_DIRECT_WRITES=false`` or under another server.
"""

from __future__ import annotations

import asyncio
import re

from starlette.datastructures import QueryParams

from ticker.api import cors_for, stream_filter
from ticker.errors import TickerError
from ticker.events import EVERYTHING
from ticker.feed import Feed, Wanted
from ticker.frames import HEARTBEAT, retry_frame
from ticker.hub import Hub
from ticker.logs import (
    new_request_id,
    sanitize_request_id,
)
from ticker.native_stream import Stream
from ticker.settings import Settings

_PATH = re.compile(rb"/channels/([a-z0-9][a-z0-9_-]{0,63})/events")
# What every stream response says besides its request ID and CORS (eventstream.HEADERS).
_HEAD = (
    b"content-type: text/event-stream; charset=utf-8\r\n"
    b"cache-control: no-store\r\n"
    b"x-accel-buffering: no\r\n"
    b"x-content-type-options: nosniff\r\n"
)
_CORS_KEPT = 256  # distinct Origin headers whose CORS lines are kept


class Head:
    """What a stream request's head says that matters here, noted header by header as
    the parser goes (``front.py``), or from a parsed list (``protocol.py``)."""

    __slots__ = ("body", "given_id", "last_id", "origin", "size")

    def __init__(self) -> None:
        self.size = 0  # what app.header_bytes counts, for the same 431
        self.last_id: bytes | None = None
        self.origin: bytes | None = None
        self.given_id: bytes | None = None
        self.body = False

    def header(self, name: bytes, value: bytes) -> None:
        """One header, its name in lower case."""
        self.size += len(name) + len(value)
        if name == b"last-event-id":
            self.last_id = value
        elif name == b"origin":
            self.origin = value
        elif name == b"x-request-id":
            self.given_id = value
        elif name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            self.body = True

    @classmethod
    def of(cls, headers: list[tuple[bytes, bytes]]) -> Head:
        head = cls()
        for name, value in headers:
            head.header(name, value)
        return head


class NativeStreams:
    """Takes stream requests from the protocol; built by the app's lifespan."""

    def __init__(self, feed: Feed, hub: Hub, settings: Settings) -> None:
        self.feed = feed
        self.hub = hub
        self.settings = settings
        self.retry = retry_frame(settings.retry_ms)
        self.live: set[Stream] = set()  # streams past their opening, for heartbeats
        self._beat: asyncio.TimerHandle | None = None
        self._channels = {c.name for c in settings.channels}
        self._defaults_from: list[tuple[bytes, bytes]] | None = None
        self._defaults_bytes = b""
        self._cors_lines: dict[bytes | None, bytes] = {}

    def take(
        self,
        url: bytes,
        head: Head,
        client: tuple[str, int] | None,
        transport: asyncio.WriteTransport,
        default_headers: list[tuple[bytes, bytes]],
    ) -> Stream | None:
        """A stream for this GET (HTTP/1.1, head parsed), or None: the ASGI path answers
        it, errors included."""
        path, _, query = url.partition(b"?")
        match = _PATH.fullmatch(path)
        if match is None or (channel := match[1].decode()) not in self._channels:
            return None
        if head.body:
            return None  # 400: nobody reads a stream request's body
        if head.size + len(path) > self.settings.max_header_bytes:
            return None
        flt, last_event_id = EVERYTHING, head.last_id.decode("latin-1") if head.last_id else None
        if query:
            params = QueryParams(query)
            try:
                flt = stream_filter(params)
            except TickerError:
                return None  # 422 naming the parameter
            last_event_id = last_event_id or params.get("last_event_id")
        address = client[0] if client else "-"
        if not self.hub.has_room(address):
            return None  # over capacity: a long retry, from the ASGI path
        self.hub.admit(address)
        request_id = sanitize_request_id(head.given_id) or new_request_id()
        lines = b"%s%s%sx-request-id: %s\r\n" % (
            self._defaults(default_headers),
            _HEAD,
            self._cors(head.origin),
            request_id.encode(),
        )
        wanted = Wanted(channel, self.hub.filter(flt), last_event_id)
        return Stream(self, transport, wanted, lines, path, address, request_id)

    def _defaults(self, headers: list[tuple[bytes, bytes]]) -> bytes:
        # uvicorn's date and server headers: a new list once a second.
        if headers is not self._defaults_from:
            self._defaults_from = headers
            self._defaults_bytes = b"".join(b"%s: %s\r\n" % pair for pair in headers)
        return self._defaults_bytes

    def _cors(self, origin: bytes | None) -> bytes:
        lines = self._cors_lines.get(origin)
        if lines is None:
            cors = cors_for(origin.decode("latin-1") if origin else None, self.settings)
            lines = "".join(f"{k}: {v}\r\n" for k, v in cors.items()).encode("latin-1")
            if len(self._cors_lines) < _CORS_KEPT:  # origins are the client's to choose
                self._cors_lines[origin] = lines
        return lines

    def beat_later(self) -> None:
        if self._beat is None:
            loop = asyncio.get_running_loop()
            self._beat = loop.call_later(self.settings.heartbeat_s, self._heartbeat)

    def _heartbeat(self) -> None:
        # One timer for every stream: per-reader timers were one heap entry each.
        self._beat = None
        for stream in self.live:
            if stream.writable():
                stream.write(HEARTBEAT)
        if self.live:
            self.beat_later()

    def close(self) -> None:
        if self._beat is not None:
            self._beat.cancel()
            self._beat = None
        for stream in list(self.live):
            stream.finish()
