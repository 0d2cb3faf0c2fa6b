"""One stream served by ticker's protocol itself (``streams.py`` takes the request): from
its judged request head to its close, with no task, coroutine or timer of its own while
it is live. See ``streams.py`` for why.

Deliberate choices (read before "fixing"):
- Every write goes through ``Socket.send``: a transport that fails ends this stream
  only, and its reader slot is released then, not at the next heartbeat.
- ``_end`` runs once, however the connection ends (the client's close or reset, an
  abort for a stalled reader, a refusal, the server's shutdown, a failed write): the
  slot, the subscription and the access line are let go of there and only there.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from contextlib import aclosing
from typing import Any, Protocol

import structlog

from ticker.domain.errors import TickerError
from ticker.fanout.channel import ChannelReader
from ticker.fanout.feed import Feed, Wanted
from ticker.fanout.hub import Hub
from ticker.fanout.socket import Socket, identity
from ticker.fanout.subscriber import Subscriber
from ticker.http import wire
from ticker.ops.logs import access_log, log_access, log_path
from ticker.settings import Settings

log = logging.getLogger("ticker.stream")


class Streams(Protocol):
    """What a stream needs of the process's streams (``streams.NativeStreams``)."""

    feed: Feed
    hub: Hub
    settings: Settings
    live: set[Stream]  # streams past their opening, for heartbeats

    def last_retry(self) -> bytes:
        """The last ``retry:`` frame of a stream we end."""

    def beat_later(self) -> None:
        """Make sure the heartbeat timer runs."""


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
        streams: Streams,
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
        # The response's header lines, until its head is written (``_begin``).
        self._head = head
        self._request_id = request_id
        self._path = path
        self.address = address
        self._started_at = time.perf_counter()
        self._status = 200
        self._stall: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self.sub = Subscriber(
            wanted.flt, streams.settings.subscriber_buffer, counted=wanted.counted
        )
        self.reader: ChannelReader | None = None
        self.opened = False  # the opening has been written: live batches may follow
        self.closed = False  # let go of: no longer counted or registered

    def start(self) -> None:
        """Register the reader and send its opening (now, or from a short task)."""
        try:
            self._start()
        except Exception:
            # A bug must cost this one connection, never a reader slot for good.
            log.exception("a stream failed to start")
            self.lost()
            self.abort()

    def _start(self) -> None:
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
            async with aclosing(streams.feed.opening(self.sub, wanted)) as opening:
                first = await streams.feed.first(self.reader, opening)
                if self.closed:
                    return
                self._begin(first)
                async for part in opening:
                    if self.closed or not self.send(part):
                        return
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
        head, self._head = self._head, b""
        self.started = True
        self.send(wire.stream_head(head) + opening)

    def _go_live(self) -> None:
        if self.closed:
            return  # the opening's write failed
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
                if data and not self.send(data):
                    return
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
        self.abort()

    def finish(self) -> None:
        """End the response from our side: a last ``retry:``, then the close."""
        if self.closed:
            return
        if not self.started:
            self._begin(b"")
        self.send(self._streams.last_retry())
        self._close()

    def _refuse(self, status: int, body: dict[str, Any]) -> None:
        """An error instead of the stream (its head not sent yet), as JSON: the same
        status, headers and body as the app's (``app.Streams``)."""
        self._status = status
        lines = self._head.replace(wire.STREAM_LINES, b"")
        if status == 503:
            lines += b"retry-after: 1\r\n"
        self.send(wire.error_response(status, body, lines))
        self._close()

    def _close(self) -> None:
        self._end()
        if self.gone:
            return
        try:
            if self.transport.get_write_buffer_size():
                # Bytes still to go: give the reader the send timeout to take them.
                loop = asyncio.get_running_loop()
                self._stall = loop.call_later(self._streams.settings.send_timeout_s, self.abort)
            self.transport.close()
        except Exception:  # closed under us: nothing left to close
            log.debug("closing a closed transport", exc_info=True)

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
