"""What one SSE connection sends: the current items or a replay, then live events.

The order is what makes it gap-free (Mercure's live queue): register with the hub first,
then read the snapshot or the replay (through the archive), then pass on live batches,
dropping any event at or below the last one already sent.

The way down, one direction: the HTTP layer (``ticker/http/``) → ``Feed`` → ``Hub``
(live) and ``Archive`` (history) → ``Subscriber`` → ``Socket``. Nothing here speaks to
Redis, and nothing here knows HTTP.

Deliberate choices (read before "fixing"):
- A stream's opening, up to its first bytes, has one deadline (``open_timeout_s``), on
  every way in: a Redis that stalls gets the reader a 503 with ``Retry-After`` in
  bounded time, not after each read's own timeout in turn.
- What a filter's new readers are shown is framed once and kept for the next readers
  with the same filter, in a cache bounded in bytes (``shown.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import NamedTuple

from ticker.domain.errors import StoreUnavailable
from ticker.domain.events import Filter, desk_event
from ticker.domain.frames import HEARTBEAT, last_retry_frame, reset_frame, retry_frame
from ticker.domain.streamid import entry_key
from ticker.fanout.channel import ChannelReader
from ticker.fanout.hub import Hub
from ticker.fanout.recent import Opening
from ticker.fanout.shown import Shows
from ticker.fanout.socket import Socket
from ticker.fanout.subscriber import Subscriber
from ticker.newsroom.archive import Archive
from ticker.settings import Settings

log = logging.getLogger("ticker.feed")

# Entries per replay read: a reader away for the whole history is sent it in pages.
REPLAY_PAGE = 500


class Wanted(NamedTuple):
    """What a reader asked for: a channel, a filter, and where it left off (if anywhere)."""

    channel: str
    flt: Filter
    last_event_id: str | None = None
    counted: bool = True  # towards items' reach (not the desk's own stream)
    # The desk's view (a token's stream): every entry, every field (events.desk_decode).
    desk: bool = False


# Asked at each heartbeat of a desk stream: does its token still read the channel?
Recheck = Callable[[], Awaitable[bool]]


class Gate:
    """Lets the connection end the feed from outside (the client went away)."""

    __slots__ = ("_sub", "closed")

    def __init__(self) -> None:
        self.closed = False
        self._sub: Subscriber | None = None

    def attach(self, sub: Subscriber) -> None:
        self._sub = sub
        if self.closed:
            sub.close()

    def close(self) -> None:
        self.closed = True
        if self._sub is not None:
            self._sub.close()


class Feed:
    """Opens streams over the process's hub: a reader's opening, then its live part."""

    def __init__(self, hub: Hub, archive: Archive, settings: Settings) -> None:
        self._hub = hub
        self._archive = archive
        self._settings = settings
        self._retry = retry_frame(settings.retry_ms)
        self._shows = Shows()  # what each filter's new readers are shown

    def _last_retry(self) -> bytes:
        return last_retry_frame(self._settings.retry_ms, self._settings.retry_jitter_ms)

    async def events(
        self,
        wanted: Wanted,
        *,
        gate: Gate | None = None,
        socket: Socket | None = None,
        recheck: Recheck | None = None,
    ) -> AsyncIterator[bytes]:
        """The stream's bytes. With a ``socket`` (``socket.py``) the live part is
        written by the fan-out itself whenever this reader is caught up; this generator
        then only wakes for heartbeats, for a backed-up reader's queue, and at the end.
        ``recheck`` (a desk stream's): at a heartbeat, False ends the stream."""
        started = False  # the head has been handed to the response
        try:
            async with self._hub.subscribe(
                wanted.channel, wanted.flt, counted=wanted.counted, desk=wanted.desk
            ) as (sub, reader):
                if gate is not None:
                    gate.attach(sub)
                if reader is None:  # shutting down: come back later
                    started = True
                    yield self._last_retry()
                    return
                async with aclosing(self.opening(sub, wanted)) as opening:
                    first = await self.first(reader, opening)
                    started = True
                    yield first
                    async for chunk in opening:
                        yield chunk
                async with aclosing(self._live(sub, wanted.flt, socket, recheck)) as live:
                    async for chunk in live:
                        yield chunk
        except StoreUnavailable as exc:
            if not started:
                raise  # before the head: the response answers 503 (eventstream.py)
            # Mid-replay: end the body with a retry hint; the reader resumes from its last ID.
            log.warning("channel %s: ending a stream: %s", wanted.channel, exc.message)
            yield self._last_retry()

    async def first(self, reader: ChannelReader, opening: AsyncIterator[bytes]) -> bytes:
        """The opening's first bytes, once the channel's reader has reached Redis; within
        ``TICKER_OPEN_TIMEOUT_S`` on every way in, or ``StoreUnavailable`` (a 503)."""
        timeout = self._settings.open_timeout_s
        try:
            async with asyncio.timeout(timeout):
                await self._hub.ready(reader)
                return await anext(opening, b"")
        except TimeoutError:
            raise StoreUnavailable(
                f"Redis is unavailable (the stream could not open within {timeout:g}s)"
            ) from None

    async def opening(self, sub: Subscriber, wanted: Wanted) -> AsyncGenerator[bytes, None]:
        """Phase 1, once ``sub`` is registered: ``retry:`` and the replay after the
        reader's Last-Event-ID, in pages; or the head and the current items, one chunk.
        Live batches that arrive meanwhile wait in ``sub``'s queue."""
        if await self._resumable(wanted):
            yield retry_frame(self._settings.retry_ms)
            async with aclosing(self._replay(sub, wanted)) as pages:
                async for chunk in pages:
                    yield chunk
        elif wanted.desk:
            yield await self._desk_head(sub, wanted)
        else:
            yield await self._snapshot(sub, wanted)

    def opening_now(self, sub: Subscriber, wanted: Wanted) -> bytes | None:
        """``opening`` without waiting, when it needs no read: a new reader, and the
        channel's current items known at its reader's position. None otherwise."""
        if wanted.last_event_id or wanted.desk:
            return None
        opening = self._hub.opening(wanted.channel)
        if opening is None:
            return None
        return self._head(sub, wanted, opening)

    async def _resumable(self, wanted: Wanted) -> bool:
        if not wanted.last_event_id:
            return False
        if await self._archive.resumable(wanted.channel, wanted.last_event_id):
            return True
        log.info(
            "channel %s: Last-Event-ID %r cannot be resumed; sending reset",
            wanted.channel,
            wanted.last_event_id[:64],
        )
        return False

    async def _replay(self, sub: Subscriber, wanted: Wanted) -> AsyncGenerator[bytes, None]:
        """Phase 1, a returning reader: exactly the events after its last ID."""
        after, more = wanted.last_event_id or "0-0", True
        while more:
            events, after, more = await self._archive.after(
                wanted.channel, after, REPLAY_PAGE, desk_view=wanted.desk
            )
            chunk = b"".join(ev.frame_for(wanted.flt) for ev in events)
            if chunk:
                yield chunk
        sub.last_sent = entry_key(after)

    async def _snapshot(self, sub: Subscriber, wanted: Wanted) -> bytes:
        return self._head(sub, wanted, await self._hub.current(wanted.channel))

    def _head(self, sub: Subscriber, wanted: Wanted, opening: Opening) -> bytes:
        """Phase 1, a new reader (or one that cannot resume: ``reset`` first): the head
        and the ticker as it is now, in one write."""
        shown = self._shows.shown(wanted.flt, opening)
        sub.last_sent = shown.position
        if wanted.counted and shown.uris and self._hub.reach is not None:
            self._hub.reach.add(wanted.channel, shown.uris)
        reset = reset_frame() if wanted.last_event_id else b""
        return self._retry + reset + shown.frames

    async def _desk_head(self, sub: Subscriber, wanted: Wanted) -> bytes:
        """Phase 1, a new desk reader: the head and every item the desk holds now (on
        air, held, embargoed, advisories), in its view, read at one stream position (so
        the live batches after it leave no gap and repeat nothing). Read for each desk
        reader and never kept: they are few, and their view is not the public one."""
        position, items = await self._archive.alive(wanted.channel)
        sub.last_sent = entry_key(position)
        shown = (ev.frame for ev in map(desk_event, items) if ev.wanted(wanted.flt))
        reset = reset_frame() if wanted.last_event_id else b""
        return self._retry + reset + b"".join(shown)

    async def _live(
        self, sub: Subscriber, flt: Filter, socket: Socket | None, recheck: Recheck | None
    ) -> AsyncGenerator[bytes, None]:
        """Phase 2: live batches, heartbeats, and a last ``retry:`` when it ends (or when
        ``recheck``, asked at a heartbeat, says the reader may no longer read)."""
        heartbeat = self._settings.heartbeat_s
        while True:
            # Everything yielded so far has been sent (the response awaits each send
            # before asking for more), so the fan-out cannot overtake it.
            if socket is not None and socket.direct:
                sub.go_direct(socket)
            batches = await sub.next(heartbeat)
            if batches is None:
                # Cut off (too far behind) or shutting down: a last retry hint, then the
                # end of the body; the reader comes back with Last-Event-ID.
                yield self._last_retry()
                return
            if not batches:
                if recheck is not None and not await recheck():
                    log.info("ending a desk stream: its token no longer reads the channel")
                    yield self._last_retry()
                    return
                yield HEARTBEAT
                continue
            chunk = b"".join(b.frames(flt, sub.last_sent) for b in batches)
            sub.last_sent = max(sub.last_sent, batches[-1].last)
            if chunk:
                yield chunk
