"""One channel's reader in this process: the single XREAD loop, the fan-out of each batch
to the channel's subscribers, the current items it can share, and its recent batches.

The loop blocks on ``XREAD`` from a concrete last ID, decodes each batch once
(``events.decode``) and hands the same ``Batch`` to every subscriber (``subscriber.py``),
which writes it to its socket or queues it. A subscriber more than ``subscriber_buffer``
events behind is cut off: its stream ends, the browser comes back with ``Last-Event-ID``,
and memory never grows with a slow reader (Mercure's rule).

A new reader's opening is a snapshot of the current items plus the batches fanned out
since it was read (``recent``): so one snapshot read serves every reader that connects
for the next ``RECENT_MAX`` batches, instead of one read per position (that is, per item
published) while a storm of readers connects during a busy story.

The desk's readers (a token's stream) are a set of their own, with batches of their own
(``events.desk_decode``: every entry, every field), made only while one is connected. So
an anonymous reader's delivery does the same work, to the instruction, with or without
them, and no desk frame can reach it: the two audiences never share a batch.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ticker.domain.errors import StoreUnavailable
from ticker.domain.events import Event, Filter, decode, desk_decode
from ticker.domain.models import Item, utcnow
from ticker.domain.streamid import entry_key
from ticker.fanout.onair import OnAir
from ticker.fanout.subscriber import Batch, Subscriber, deliver
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


# Batches kept for readers that open from a snapshot read a little earlier.
RECENT_MAX = 64

# A stream position and the items current at it, each with its ``item`` event.
Snapshot = tuple[str, list[tuple[Item, Event]]]


@dataclass(frozen=True, slots=True)
class Opening:
    """What a new reader starts from: a snapshot, the batches fanned out since it was
    read, and the position the two reach (live batches after it follow)."""

    snapshot: Snapshot
    since: list[Batch]
    position: tuple[int, int]


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
        self.subscribers: set[Subscriber] = set()
        # The desk's readers (``Subscriber.desk``): never in ``subscribers``.
        self.desk_subscribers: set[Subscriber] = set()
        # One object per distinct filter of a present reader, and its readers: the
        # fan-out's per-filter lookups (``Batch``) then hit by identity. A filter goes
        # with its last reader, so filters that come and go hold nothing.
        self._filters: dict[Filter, Filter] = {}
        self._per_filter: dict[Filter, int] = {}
        # What is on air and who is counted, for reach (``onair.py``); built from the
        # first snapshot this reader keeps (until then, every live item counts).
        self.on_air = OnAir()
        self._on_air_known = False
        self.ready = asyncio.Event()
        self._position = "0-0"
        # The current items as of some position not before ``recent_floor``: with the
        # batches since, a new reader's opening (``opening``; Hub.current reads it).
        self.snapshot: Snapshot | None = None
        # Every batch fanned out after ``recent_floor``, up to RECENT_MAX of them.
        self.recent: deque[Batch] = deque()
        self.recent_floor = (0, 0)
        self._opening: Opening | None = None  # ``opening()``, until either moves
        # A snapshot read under way, for readers that connect meanwhile (Hub.current).
        self.loading: asyncio.Future[Snapshot] | None = None
        self.stopped = False
        self._store = store
        self._settings = settings
        self._metrics = metrics
        self._reach = reach  # where the fan-out counts who was shown what; None: not
        self._delivered = metrics.child(metrics.delivered, channel)
        self._latency = metrics.child(metrics.latency, channel)
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
    def idle(self) -> bool:
        """No reader of either audience left."""
        return not self.subscribers and not self.desk_subscribers

    def join(self, sub: Subscriber) -> None:
        if sub.desk:
            self.desk_subscribers.add(sub)  # few: no shared filter objects, no reach
            return
        flt = sub.filter = self._filters.setdefault(sub.filter, sub.filter)
        self.subscribers.add(sub)
        self._per_filter[flt] = self._per_filter.get(flt, 0) + 1
        if sub.counted:
            self.on_air.join(flt)

    def leave(self, sub: Subscriber) -> None:
        if sub.desk:
            self.desk_subscribers.discard(sub)
            return
        if sub in self.subscribers:
            self.subscribers.discard(sub)
            flt = sub.filter
            if sub.counted:
                self.on_air.leave(flt)
            left = self._per_filter.get(flt, 1) - 1
            if left:
                self._per_filter[flt] = left
            else:
                self._per_filter.pop(flt, None)
                self._filters.pop(flt, None)

    def drop_all(self) -> None:
        for sub in [*self.subscribers, *self.desk_subscribers]:
            sub.close()
        self.subscribers.clear()
        self.desk_subscribers.clear()
        self._per_filter.clear()
        self._filters.clear()
        self.on_air.clear_readers()

    @property
    def position(self) -> str:
        """The last stream entry this reader has fanned out (or started from)."""
        return self._position

    def restart_at(self, entry_id: str) -> None:
        """Go on from ``entry_id``, which does not follow what was fanned out before (the
        start, a resync): nothing kept from before it can be built on."""
        self._position = entry_id
        self.snapshot = self._opening = None
        self.recent.clear()
        self.recent_floor = entry_key(entry_id)
        self._on_air_known = False

    def keep(self, snapshot: Snapshot) -> bool:
        """Keep ``snapshot`` for later readers unless it is older than the batches kept.
        One read a little ahead of this reader (an entry it has not fanned out yet) is
        kept too: a reader opening from it skips the live batches it already holds."""
        at = entry_key(snapshot[0])
        if at < self.recent_floor:
            return False
        self.snapshot, self._opening = snapshot, None
        if not self._on_air_known:
            self._on_air_known = True
            now = utcnow()
            since = (ev for batch in self.recent for ev in batch.events if ev.key > at)
            self.on_air.restart((ev for item, ev in snapshot[1] if item.visible_at(now)), since)
        return True

    def opening(self) -> Opening | None:
        """The kept snapshot and the batches since: what a reader that registers now
        starts from. None when there is no snapshot, or it is older than the batches
        kept (it is dropped then)."""
        if self._opening is not None:
            return self._opening
        snapshot = self.snapshot
        if snapshot is None:
            return None
        at = entry_key(snapshot[0])
        if at < self.recent_floor:
            self.snapshot = None
            return None
        since = [batch for batch in self.recent if batch.last > at]
        self._opening = Opening(snapshot, since, max(at, entry_key(self._position)))
        return self._opening

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
        self._position, self._opening = entries[-1].id, None
        if events:
            self._fan_out_public(events, first, last, now)
        if self.desk_subscribers:  # after the public batch: its readers never wait for it
            self._fan_out_desk(entries, first, last)

    def _fan_out_public(
        self, events: list[Event], first: tuple[int, int], last: tuple[int, int], now: datetime
    ) -> None:
        batch = Batch(events, first, last)
        recent = self.recent
        recent.append(batch)
        if len(recent) > RECENT_MAX:
            self.recent_floor = recent.popleft().last
        metrics = self._metrics
        # A copy: a stream that ends during its write leaves the set.
        for sub in deliver(batch, list(self.subscribers)):
            self.leave(sub)
            metrics.cut_off.labels(self.channel).inc()
            log.info(
                "reader %s: cut off a subscriber %s events behind",
                self.channel,
                self._settings.subscriber_buffer,
            )
        reach = self._reach
        if reach is not None:
            # Once per batch, over the distinct filters: never per delivery.
            counts = self.on_air.counts(events)
            if counts:
                reach.add(self.channel, counts)
        # Per batch, not per delivery: the cost does not grow with the number of readers.
        self._delivered.inc(len(events) * len(self.subscribers))
        now_ms = now.timestamp() * 1000
        latency = self._latency
        for event in events:
            latency.observe(max(0.0, (now_ms - event.key[0]) / 1000))

    def _fan_out_desk(
        self, entries: Sequence[Entry], first: tuple[int, int], last: tuple[int, int]
    ) -> None:
        """The desk's readers' batch: every entry in the desk's view; not kept for
        openings (a desk reader reads its own) and never counted towards reach."""
        events = []
        for entry in entries:
            try:
                event = desk_decode(entry.id, entry.fields, self.channel)
            except Exception:  # one bad entry must never stop a channel's live updates
                log.exception("reader %s: skipping entry %s", self.channel, entry.id)
                continue
            if event is not None:
                events.append(event)
        if not events:
            return
        for sub in deliver(Batch(events, first, last), list(self.desk_subscribers)):
            self.leave(sub)
            self._metrics.cut_off.labels(self.channel).inc()
        self._delivered.inc(len(events) * len(self.desk_subscribers))


def _decode(entry: Entry, channel: str, now: datetime) -> Event | None:
    try:
        return decode(entry.id, entry.fields, channel, now)
    except Exception:  # one bad entry must never stop a channel's live updates
        log.exception("reader %s: skipping entry %s", channel, entry.id)
        return None
