"""What one SSE connection sends: the current items or a replay, then live events.

The order is what makes it gap-free (Mercure's live queue): register with the hub first,
then read the snapshot or replay from Redis, then pass on live batches, dropping any
event at or below the last one already sent.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from ticker.desk import Desk
from ticker.errors import StoreUnavailable
from ticker.hub import Hub
from ticker.models import utcnow
from ticker.protocol import Socket
from ticker.settings import Settings
from ticker.sse import Filter, entry_key, reset_frame, retry_frame
from ticker.store import Store
from ticker.subscriber import Subscriber

log = logging.getLogger("ticker.feed")

_REPLAY_PAGE = 500
HEARTBEAT = b":\n\n"


async def _resumable(store: Store, channel: str, last_event_id: str, max_age: timedelta) -> bool:
    """Can we send exactly the events after this ID? Otherwise the reader gets ``reset``."""
    from ticker.sse import valid_entry_id

    if not valid_entry_id(last_event_id):
        return False
    ms, _ = entry_key(last_event_id)
    cutoff = utcnow() - max_age
    if ms < int(cutoff.timestamp() * 1000):
        return False  # older than the history rule, even if trimming left it in Redis
    return await store.knows(channel, last_event_id)


class Gate:
    """Lets the connection end the feed from outside (the client went away)."""

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


async def events(
    *,
    hub: Hub,
    desk: Desk,
    store: Store,
    settings: Settings,
    channel: str,
    flt: Filter,
    last_event_id: str | None,
    gate: Gate | None = None,
    socket: Socket | None = None,
) -> AsyncIterator[bytes]:
    """The stream's bytes. With a ``socket`` (see ``protocol.py``) the live part is
    written by the fan-out itself whenever this reader is caught up; this generator then
    only wakes for heartbeats, for a backed-up reader's queue, and at the end."""
    ch = desk.channel(channel)
    started = False  # the head has been handed to the response
    try:
        async with hub.subscribe(channel, flt) as sub:
            if gate is not None:
                gate.attach(sub)
            head = [retry_frame(settings.retry_ms)]
            if last_event_id and await _resumable(
                store, channel, last_event_id, ch.history_max_age
            ):
                after = last_event_id
                started = True
                yield b"".join(head)
                more = True
                while more:
                    events, after, more = await desk.after(channel, after, _REPLAY_PAGE)
                    chunk = b"".join(ev.frame_for(flt) for ev in events)
                    if chunk:
                        yield chunk
                sub.last_sent = entry_key(after)
            else:
                if last_event_id:
                    log.info(
                        "channel %s: Last-Event-ID %r cannot be resumed; sending reset",
                        channel,
                        last_event_id[:64],
                    )
                    head.append(reset_frame())
                position, current = await hub.current(channel, lambda: desk.current(channel))
                now = utcnow()
                for item, ev in current:
                    if ev.wanted(flt) and item.visible_at(now):
                        head.append(ev.frame)
                sub.last_sent = entry_key(position)
                started = True
                yield b"".join(head)
            while True:
                # Everything yielded so far has been sent (the response awaits each send
                # before asking for more), so the fan-out cannot overtake it.
                if socket is not None and socket.direct:
                    sub.go_direct(socket)
                batches = await sub.next(settings.heartbeat_s)
                if batches is None:
                    # Cut off (too far behind) or shutting down: a last retry hint, then the
                    # end of the body; the reader comes back with Last-Event-ID.
                    yield retry_frame(settings.retry_ms)
                    return
                if not batches:
                    yield HEARTBEAT  # a comment, so proxies keep an idle stream open
                    continue
                chunk = b"".join(b.frames(flt, sub.last_sent) for b in batches)
                sub.last_sent = max(sub.last_sent, batches[-1].last)
                if chunk:
                    yield chunk
    except StoreUnavailable as exc:
        if not started:
            raise  # before the head: the response answers 503 (eventstream.py)
        # Mid-replay: end the body with a retry hint; the reader resumes from its last ID.
        log.warning("channel %s: ending a stream: %s", channel, exc.message)
        yield retry_frame(settings.retry_ms)
