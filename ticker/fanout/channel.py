"""One channel's reader in this process: the single XREAD loop, its reconnects, and the
resync when its position is gone from the stream.

The loop blocks on ``XREAD`` from a concrete last ID, decodes each batch once
(``events.decode``), keeps it for new readers' openings (``recent.py``: a snapshot of
the current items plus the batches fanned out since it was read), then fans it out to
the channel's subscribers (``readers.py``, the public ones and the desk's).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
from collections.abc import Sequence
from datetime import datetime

from ticker.domain.errors import StoreUnavailable
from ticker.domain.events import Event, decode
from ticker.domain.models import utcnow
from ticker.domain.streamid import entry_key
from ticker.fanout.readers import Readers
from ticker.fanout.recent import Opening, Recent, Snapshot
from ticker.fanout.subscriber import Batch, Subscriber
from ticker.newsroom.reach import Reach
from ticker.ops import logs
from ticker.ops.metrics import Metrics
from ticker.settings import Settings
from ticker.store import Entry, Store

log = logging.getLogger("ticker.channel")

# One outage warning per process per 10 s, however many channel readers retry.
_outage_warnings = logs.Every(10.0)
# A channel reader's reconnect backoff: doubling from the first to the most, each sleep
# jittered by ±50 % so that many processes do not reconnect in lockstep.
BACKOFF_FIRST_S, BACKOFF_MOST_S = 0.1, 5.0


def _backoff(previous: float) -> float:
    return min(BACKOFF_MOST_S, max(BACKOFF_FIRST_S, previous * 2))


def _jittered(delay: float) -> float:
    return delay * random.uniform(0.5, 1.5)


class ChannelReader:
    """The single XREAD loop of one channel in this process."""

    def __init__(
        self,
        channel: str,
        *,
        store: Store,
        settings: Settings,
        metrics: Metrics,
        reach: Reach | None = None,
    ) -> None:
        self.channel = channel
        # Its subscribers, both audiences, and the fan-out of a batch to them.
        self.readers = Readers(channel, settings=settings, metrics=metrics, reach=reach)
        self._on_air_known = False  # ``keep`` has told ``readers.on_air`` what is on air
        self.ready = asyncio.Event()
        # The position, the recent batches and the snapshot they keep usable: with the
        # batches since, a new reader's opening (``opening``; Hub.current reads it).
        self.recent = Recent()
        # A snapshot read under way, for readers that connect meanwhile (Hub.current).
        self.loading: asyncio.Future[Snapshot] | None = None
        self.stopped = False
        self._store = store
        self._settings = settings
        self._metrics = metrics
        # A fresh context: the task outlives the request that started it (and its
        # request_id in the logs).
        self.task = asyncio.create_task(
            self._run(), name=f"ticker-reader:{channel}", context=contextvars.Context()
        )

    async def _run(self) -> None:
        settings, store = self._settings, self._store
        delay = 0.0
        # The flag backs up cancel(): redis-py can swallow a cancellation mid-command.
        while not self.stopped:
            try:
                async with store.stream.tail(self.channel, block_ms=settings.read_block_ms) as tail:
                    if not self.ready.is_set():
                        # Start from a concrete ID, never '$': an entry added between two
                        # reads would be skipped.
                        self.restart_at(await store.stream.last_id(self.channel))
                        self.ready.set()
                    if delay:
                        # Back only once a command has gone through (the tail connects
                        # lazily): a reconnection, not an attempt, is what is counted.
                        await store.ping()
                        log.info("reader %s: Redis is back", self.channel)
                        self._metrics.redis_reconnects.labels(self.channel).inc()
                        await self._check_position()
                    delay = 0.0
                    while not self.stopped:
                        entries = await tail.read(
                            self.position,
                            count=settings.read_batch,
                            block_ms=settings.read_block_ms,
                        )
                        if entries and await self._gap_before(entries):
                            continue
                        if entries:
                            self._fan_out(entries)
            except StoreUnavailable as exc:
                delay = _backoff(delay)
                held = _outage_warnings.due()
                if held is not None:
                    log.warning(
                        "reader %s: %s; retrying (%d similar warnings in the last 10s)",
                        self.channel,
                        exc,
                        held,
                    )
                # Jitter, so many processes do not reconnect in lockstep.
                await asyncio.sleep(_jittered(delay))
                continue
            except Exception:
                # A bug must not silently end a channel's live updates: log it, go on.
                log.exception("reader %s failed; restarting it", self.channel)
                delay = _backoff(delay)
                await asyncio.sleep(_jittered(delay))

    @property
    def subscribers(self) -> set[Subscriber]:
        return self.readers.subscribers

    @property
    def desk_subscribers(self) -> set[Subscriber]:
        """The desk's readers (``Subscriber.desk``): never in ``subscribers``."""
        return self.readers.desk_subscribers

    @property
    def idle(self) -> bool:
        """No reader of either audience left."""
        return self.readers.idle

    def join(self, sub: Subscriber) -> None:
        self.readers.join(sub)

    def leave(self, sub: Subscriber) -> None:
        self.readers.leave(sub)

    def drop_all(self) -> None:
        self.readers.drop_all()

    @property
    def position(self) -> str:
        """The last stream entry this reader has fanned out (or started from)."""
        return self.recent.position

    def restart_at(self, entry_id: str) -> None:
        """Go on from ``entry_id``, which does not follow what was fanned out before (the
        start, a resync): nothing kept from before it can be built on."""
        self.recent.restart_at(entry_id)
        self._on_air_known = False

    def keep(self, snapshot: Snapshot) -> bool:
        """Keep ``snapshot`` for later readers (``Recent.keep``); the first one kept
        tells reach what is on air."""
        if not self.recent.keep(snapshot):
            return False
        if not self._on_air_known:
            self._on_air_known = True
            now, at = utcnow(), entry_key(snapshot[0])
            since = (ev for batch in self.recent.batches for ev in batch.events if ev.key > at)
            self.readers.on_air.restart(
                (ev for item, ev in snapshot[1] if item.visible_at(now)), since
            )
        return True

    def opening(self) -> Opening | None:
        """What a reader that registers now starts from (``Recent.opening``)."""
        return self.recent.opening()

    async def _check_position(self) -> None:
        """After an outage: is our position still in the stream? A Redis that lost its
        data (or a stream trimmed past us) would otherwise leave readers silently stale.
        Ending every stream sends them back with Last-Event-ID, and the feed decides
        between an exact resume and a ``reset``."""
        store = self._store
        if self.position == "0-0" or await store.stream.knows(self.channel, self.position):
            return
        log.warning(
            "reader %s: position %s is gone from the stream (data lost or "
            "trimmed); ending %d streams so readers resync",
            self.channel,
            self.position,
            len(self.subscribers),
        )
        self.restart_at(await store.stream.last_id(self.channel))
        self.drop_all()
        self._metrics.resyncs.labels(self.channel).inc()

    async def _gap_before(self, entries: Sequence[Entry]) -> bool:
        """A reader that falls further behind than the history can find its position
        trimmed away: XREAD then silently starts at the oldest entry left. Only a big
        batch can follow such a gap, so only then do we check; on a gap every stream is
        ended and its reader comes back to a ``reset``, never to a silent hole."""
        ch = self._settings.channel(self.channel)
        limit = min(self._settings.read_batch, ch.history_max_items if ch else 1)
        if len(entries) < limit or self.position == "0-0":
            return False
        if await self._store.stream.knows(self.channel, self.position):
            return False
        log.warning(
            "reader %s: fell behind the history (position %s trimmed); ending %d "
            "streams so readers resync",
            self.channel,
            self.position,
            len(self.subscribers),
        )
        self.restart_at(entries[-1].id)
        self.drop_all()
        self._metrics.resyncs.labels(self.channel).inc()
        return True

    def stop(self) -> None:
        self.stopped = True
        # From its own task (its last stream ended inside the fan-out): the loop ends by
        # itself and closes its connection; a cancel would cut that close short.
        if asyncio.current_task() is not self.task:
            self.task.cancel()

    def _fan_out(self, entries: Sequence[Entry]) -> None:
        now = utcnow()
        events = [e for e in (_decode(x, self.channel, now) for x in entries) if e]
        first, last = entry_key(entries[0].id), entry_key(entries[-1].id)
        batch = Batch(events, first, last) if events else None
        self.recent.moved(entries[-1].id, batch)  # kept for openings before it is delivered
        if batch is not None:
            self.readers.public(batch, now)
        if self.readers.desk_subscribers:  # after the public batch: never waited for
            self.readers.desk(entries, first, last)


def _decode(entry: Entry, channel: str, now: datetime) -> Event | None:
    try:
        return decode(entry.id, entry.fields, channel, now)
    except Exception:  # one bad entry must never stop a channel's live updates
        log.exception("reader %s: skipping entry %s", channel, entry.id)
        return None
