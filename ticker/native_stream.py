"""One stream served by ticker's protocol itself (``native.py`` takes the request): from
its parsed request head to its close, with no task, coroutine or timer of its own while
it is live. See ``native.py`` for why."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import time
from contextlib import aclosing
from typing import TYPE_CHECKING

import structlog

from ticker.channel import ChannelReader
from ticker.errors import TickerError
from ticker.feed import Wanted
from ticker.logs import access_log, log_access, log_path
from ticker.protocol import Socket, identity
from ticker.subscriber import Subscriber

if TYPE_CHECKING:
    from ticker.native import NativeStreams

log = logging.getLogger("ticker.native")

_STATUS = {500: b"500 Internal Server Error", 503: b"503 Service Unavailable"}


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
