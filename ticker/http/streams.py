"""Streams served by ticker's protocol itself, ahead of the ASGI cycle.

Why: under plain ASGI a connecting reader costs a task, a scope, the middleware chain,
uvicorn's header building, two writes and a timeout per send; measured, most of what a
connect cost and of a reader's memory (the figures, dated: docs/performance.md). A
storm of reconnecting browsers is made of one request, ``GET /channels/{ch}/events``,
so the protocol that parsed its head (``front.py``, ``protocol.py``) hands it here once
``rules.judge`` has said what it is. The reader is
registered with the hub, its opening (``retry:`` and the current items) goes out with
the response head in one write, and from then on the fan-out writes to it
(``fanout/subscriber.py``). Nothing waits per reader: no task, no coroutine, no timer. A
resume, or a snapshot that must be read first, runs in a short task that ends once the
reader is live; heartbeats are one timer for every stream of the process.

What stays on the ASGI path (``app.Streams``, with the same verdict and bytes): every
refusal (``judge``'s, and over capacity), HTTP/1.0, a request pipelined behind another,
and every stream when ``TICKER_DIRECT_WRITES=false`` or under another server.
"""

from __future__ import annotations

import asyncio

from ticker.domain.frames import HEARTBEAT, last_retry_frame
from ticker.fanout.feed import Feed, Wanted
from ticker.fanout.hub import Hub
from ticker.http import wire
from ticker.http.rules import StreamRequest, cors_for
from ticker.http.stream import Stream
from ticker.ops.logs import new_request_id
from ticker.settings import Settings

_CORS_KEPT = 256  # distinct Origin headers whose CORS lines are kept


class NativeStreams:
    """Takes stream requests from the protocols; built by the app's lifespan."""

    def __init__(self, feed: Feed, hub: Hub, settings: Settings) -> None:
        self.feed = feed
        self.hub = hub
        self.settings = settings
        self.live: set[Stream] = set()  # streams past their opening, for heartbeats
        self._beat: asyncio.TimerHandle | None = None
        self._defaults_from: list[tuple[bytes, bytes]] | None = None
        self._defaults_bytes = b""
        self._cors_lines: dict[str | None, bytes] = {}

    def last_retry(self) -> bytes:
        """The ``retry:`` a stream ends with (jittered: ``frames.last_retry_frame``)."""
        return last_retry_frame(self.settings.retry_ms, self.settings.retry_jitter_ms)

    def take(
        self,
        wanted: StreamRequest,
        target: bytes,
        client: tuple[str, int] | None,
        transport: asyncio.WriteTransport,
        default_headers: list[tuple[bytes, bytes]],
    ) -> Stream | None:
        """A stream for this request (HTTP/1.1, judged a stream request), or None when
        over capacity: the app answers that (a long retry)."""
        address = client[0] if client else "-"
        if not self.hub.has_room(address):
            return None  # the app refuses it, and counts the refusal once
        self.hub.admit(address)
        request_id = wanted.request_id or new_request_id()
        lines = b"%s%s%sx-request-id: %s\r\n" % (
            self._defaults(default_headers),
            wire.STREAM_LINES,
            self._cors(wanted.origin),
            request_id.encode(),
        )
        path = target.partition(b"?")[0]
        feed_wanted = Wanted(wanted.channel, wanted.flt, wanted.last_event_id, wanted.counted)
        return Stream(self, transport, feed_wanted, lines, path, address, request_id)

    def _defaults(self, headers: list[tuple[bytes, bytes]]) -> bytes:
        # uvicorn's date and server headers: a new list once a second.
        if headers is not self._defaults_from:
            self._defaults_from = headers
            self._defaults_bytes = wire.header_lines(headers)
        return self._defaults_bytes

    def defaults(self) -> bytes:
        """The server's default header lines, as last seen."""
        return self._defaults_bytes

    def _cors(self, origin: str | None) -> bytes:
        lines = self._cors_lines.get(origin)
        if lines is None:
            lines = wire.header_lines(cors_for(origin, self.settings.cors_origins))
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
        for stream in list(self.live):  # a copy: a failed write ends its stream
            if stream.writable():
                stream.send(HEARTBEAT)
        if self.live:
            self.beat_later()

    def close(self) -> None:
        if self._beat is not None:
            self._beat.cancel()
            self._beat = None
        for stream in list(self.live):
            stream.finish()
