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
import contextvars
import json
import logging
import re
import time
from contextlib import aclosing

import structlog
from starlette.datastructures import QueryParams

from ticker.api import cors_for, stream_filter
from ticker.channel import ChannelReader
from ticker.errors import TickerError
from ticker.events import EVERYTHING
from ticker.feed import Feed, Wanted
from ticker.frames import HEARTBEAT, retry_frame
from ticker.hub import Hub
from ticker.logs import (
    access_log,
    log_access,
    log_path,
    new_request_id,
    sanitize_request_id,
)
from ticker.protocol import Socket, identity
from ticker.settings import Settings
from ticker.subscriber import Subscriber

log = logging.getLogger("ticker.native")

_PATH = re.compile(rb"/channels/([a-z0-9][a-z0-9_-]{0,63})/events")
# What every stream response says besides its request ID and CORS (eventstream.HEADERS).
_HEAD = (
    b"content-type: text/event-stream; charset=utf-8\r\n"
    b"cache-control: no-store\r\n"
    b"x-accel-buffering: no\r\n"
    b"x-content-type-options: nosniff\r\n"
)
_CORS_KEPT = 256  # distinct Origin headers whose CORS lines are kept
_STATUS = {500: b"500 Internal Server Error", 503: b"503 Service Unavailable"}


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


class Stream(Socket):
    """One reader's connection, from its parsed request head to its close; it is also
    the ``Socket`` the fan-out writes to (one object per reader, not two)."""

    __slots__ = (
        "_head",
        "_path",
        "_request_id",
        "_stall",
        "_started_at",
        "_status",
        "_streams",
        "_task",
        "address",
        "closed",
        "opened",
        "reader",
        "sub",
        "wanted",
    )

    def __init__(
        self,
        streams: NativeStreams,
        transport: asyncio.WriteTransport,
        wanted: Wanted,
        head: bytes,
        path: bytes,
        address: str,
        request_id: str,
    ) -> None:
        super().__init__(transport, http_version="1.1")
        # The body ends with the connection (RFC 9112 section 6.3), as nchan's streams do:
        # no chunk framing to write, or for every reader to take apart.
        self.framing = identity
        self._streams = streams
        self.wanted = wanted
        self._head = head  # the response's header lines, but for its framing
        self._request_id = request_id
        self._path = path
        self.address = address
        self._started_at = time.perf_counter()
        self._status = 200
        self._stall: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self.sub = Subscriber(wanted.flt, streams.settings.subscriber_buffer)
        self.reader: ChannelReader | None = None
        self.opened = False  # the opening has been written: live batches may follow
        self.closed = False  # let go of: no longer counted or registered

    def start(self) -> None:
        streams, sub = self._streams, self.sub
        self.reader = streams.hub.join(self.wanted.channel, sub)
        if self.reader is None:  # shutting down: come back later
            self.finish()
            return
        sub.listener = self._drain
        if self.reader.ready.is_set():
            opening = streams.feed.opening_now(sub, self.wanted)
            if opening is not None:
                self._begin(opening)
                self._go_live()
                return
        # A resume, or the current items not known yet: read them first. A fresh
        # context, so the task does not keep what the protocol's caller had bound.
        self._task = asyncio.get_running_loop().create_task(
            self._open(), context=contextvars.Context()
        )

    async def _open(self) -> None:
        streams, wanted = self._streams, self.wanted
        assert self.reader is not None
        try:
            await streams.hub.ready(self.reader)
            async with aclosing(streams.feed.opening(self.sub, wanted)) as opening:
                first = await anext(opening, b"")
                if self.closed:
                    return
                self._begin(first)
                async for part in opening:
                    if self.closed:
                        return
                    self.transport.write(part)
        except TickerError as exc:
            if self.closed:
                return
            if self.started:  # mid-replay: the reader resumes from its last ID
                log.warning("channel %s: ending a stream: %s", wanted.channel, exc.message)
                self.finish()
            else:
                log.warning("not starting a stream: %s", exc.message)
                self._refuse(exc.status_code, exc.body())
            return
        except Exception:
            log.exception("channel %s: a stream failed to open", wanted.channel)
            if self.closed:
                return
            if self.started:
                self.finish()
            else:
                self._refuse(500, {"error": "internal_error", "message": "internal server error"})
            return
        finally:
            self._task = None
        if not self.closed:
            self._go_live()

    def _begin(self, opening: bytes) -> None:
        """The response head and the opening in one write."""
        self.transport.write(
            b"HTTP/1.1 200 OK\r\n%sconnection: close\r\n\r\n%s" % (self._head, opening)
        )
        self.started = True

    def _go_live(self) -> None:
        self.opened = True
        self._streams.live.add(self)
        self._streams.beat_later()
        self._drain()

    def _drain(self) -> None:
        """Write what queued while the reader was opening or backed up, then hand the
        socket to the fan-out. Also the subscriber's listener: it ended (cut off, shut
        down, resync) or queued a batch."""
        sub = self.sub
        if self.closed or not self.opened:
            return
        if sub.closed:
            self.finish()
            return
        if self.paused:
            return  # resume_writing calls again
        for batch in sub.take():
            if batch.last > sub.last_sent:
                data = batch.frames(sub.filter, sub.last_sent)
                if data:
                    self.transport.write(data)
                sub.last_sent = batch.last
        sub.go_direct(self)

    def flow(self, paused: bool) -> None:
        """Flow control, from the protocol: a reader that stays backed up for the send
        timeout has stopped reading, and its connection is dropped."""
        self.paused = paused
        if paused:
            if self._stall is None and not self.closed:
                loop = asyncio.get_running_loop()
                self._stall = loop.call_later(self._streams.settings.send_timeout_s, self._stalled)
            return
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None
        self._drain()

    def _stalled(self) -> None:
        self._stall = None
        timeout = self._streams.settings.send_timeout_s
        log.info("ending a stream whose reader stopped reading for %.0fs", timeout)
        self.transport.abort()

    def finish(self) -> None:
        """End the response from our side: a last ``retry:``, then the close."""
        if self.closed:
            return
        if not self.started:
            self._begin(b"")
        self.transport.write(self._streams.retry)
        self._close()

    def _refuse(self, status: int, body: dict[str, object]) -> None:
        """An error instead of the stream (its head not sent yet), as JSON."""
        self._status = status
        data = json.dumps(body).encode()
        head = self._head.replace(b"text/event-stream; charset=utf-8", b"application/json")
        self.transport.write(
            b"HTTP/1.1 %s\r\n%s%sconnection: close\r\ncontent-length: %d\r\n\r\n%s"
            % (
                _STATUS.get(status, b"%d Error" % status),
                head,
                b"retry-after: 1\r\n" if status == 503 else b"",
                len(data),
                data,
            )
        )
        self._close()

    def _close(self) -> None:
        self._end()
        if self.transport.get_write_buffer_size():
            # Bytes still to go: give the reader the send timeout to take them.
            loop = asyncio.get_running_loop()
            self._stall = loop.call_later(
                self._streams.settings.send_timeout_s, self.transport.abort
            )
        self.transport.close()

    def lost(self) -> None:
        """The connection is gone (from the protocol)."""
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None
        self.gone = True
        self._end()

    def _end(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.ended = True
        streams, sub = self._streams, self.sub
        streams.live.discard(self)
        sub.listener = None
        if self.reader is not None:
            streams.hub.part(self.wanted.channel, self.reader, sub)
        streams.hub.leave(self.address)
        if access_log.isEnabledFor(logging.INFO):
            with structlog.contextvars.bound_contextvars(request_id=self._request_id):
                log_access(
                    "GET", log_path(self._path), self._status, self._started_at, self.address
                )
