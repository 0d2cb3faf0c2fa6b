"""Fan-out: one reader task per channel per process, many subscribers.

The reader blocks on ``XREAD`` from a concrete last ID, decodes each batch once
(``events.decode``) and offers the same ``Batch`` to every subscriber of the channel, which
writes it to its socket or queues it (``subscriber.py``). A subscriber more than
``subscriber_buffer`` events behind is cut off: its stream ends, the browser comes back
with ``Last-Event-ID``, and memory never grows with a slow reader (Mercure's rule).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

from ticker import logs, tasks
from ticker.errors import StoreUnavailable
from ticker.events import Event, Filter, decode, item_event
from ticker.metrics import Metrics
from ticker.models import Item, utcnow
from ticker.reach import Reach
from ticker.settings import Settings
from ticker.store import Entry, Store
from ticker.streamid import entry_key
from ticker.subscriber import Batch, Subscriber, deliver

log = logging.getLogger("ticker.hub")

# One outage warning per process per 10 s, however many channel readers retry.
_outage_warnings = logs.Every(10.0)
# How long a new stream waits for its channel's reader to reach Redis before a 503.
READY_WAIT_S = 5.0
# A channel reader's reconnect backoff: doubling from the first to the most, each sleep
# jittered by ±50 % so that many processes do not reconnect in lockstep.
BACKOFF_FIRST_S, BACKOFF_MOST_S = 0.1, 5.0


def _backoff(previous: float) -> float:
    return min(BACKOFF_MOST_S, max(BACKOFF_FIRST_S, previous * 2))


def _jittered(delay: float) -> float:
    return delay * random.uniform(0.5, 1.5)


# Distinct reader filters kept for sharing (more are served, just not shared).
FILTERS_MAX = 4096

# A stream position and the items current at it, each with its ``item`` event.
Snapshot = tuple[str, list[tuple[Item, Event]]]


class ChannelReader:
    """The single XREAD loop of one channel in this process."""

    def __init__(self, hub: Hub, channel: str) -> None:
        self.channel = channel
        self.subscribers: set[Subscriber] = set()
        # Subscribers per filter, kept as they come and go (``join``, ``leave``): an item's
        # reach is then a sum over the few distinct filters, with no per-reader work.
        self.per_filter: dict[Filter, int] = {}
        self.ready = asyncio.Event()
        self._position = "0-0"
        # The current items as of ``position`` (see Hub.current); cleared when it moves.
        self.snapshot: Snapshot | None = None
        # A snapshot read under way, for readers that connect meanwhile (Hub.current).
        self.loading: asyncio.Future[Snapshot] | None = None
        self.stopped = False
        self._hub = hub
        self._delivered = hub.metrics.child(hub.metrics.delivered, channel)
        self._latency = hub.metrics.child(hub.metrics.latency, channel)
        # A fresh context: the task outlives the request that started it (and its
        # request_id in the logs).
        self.task = asyncio.create_task(
            self._run(), name=f"ticker-reader:{channel}", context=contextvars.Context()
        )

    async def _run(self) -> None:
        settings, store = self._hub.settings, self._hub.store
        delay = 0.0
        # The flag backs up cancel(): redis-py can swallow a cancellation mid-command.
        while not self.stopped:
            try:
                async with store.tail(self.channel, block_ms=settings.read_block_ms) as tail:
                    if not self.ready.is_set():
                        # Start from a concrete ID, never '$': an entry added between two
                        # reads would be skipped.
                        self.position = await store.last_id(self.channel)
                        self.ready.set()
                    if delay:
                        # Back only once a command has gone through (the tail connects
                        # lazily): a reconnection, not an attempt, is what is counted.
                        await store.ping()
                        log.info("reader %s: Redis is back", self.channel)
                        self._hub.metrics.redis_reconnects.labels(self.channel).inc()
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

    def join(self, sub: Subscriber) -> None:
        self.subscribers.add(sub)
        self.per_filter[sub.filter] = self.per_filter.get(sub.filter, 0) + 1

    def leave(self, sub: Subscriber) -> None:
        if sub in self.subscribers:
            self.subscribers.discard(sub)
            left = self.per_filter.get(sub.filter, 1) - 1
            if left:
                self.per_filter[sub.filter] = left
            else:
                self.per_filter.pop(sub.filter, None)

    def drop_all(self) -> None:
        for sub in list(self.subscribers):
            sub.close()
        self.subscribers.clear()
        self.per_filter.clear()

    @property
    def position(self) -> str:
        """The last stream entry this reader has fanned out (or started from)."""
        return self._position

    @position.setter
    def position(self, entry_id: str) -> None:
        if entry_id != self._position:
            self._position = entry_id
            self.snapshot = None

    async def _check_position(self) -> None:
        """After an outage: is our position still in the stream? A Redis that lost its
        data (or a stream trimmed past us) would otherwise leave readers silently stale.
        Ending every stream sends them back with Last-Event-ID, and the feed decides
        between an exact resume and a ``reset``."""
        store = self._hub.store
        if self.position == "0-0" or await store.knows(self.channel, self.position):
            return
        log.warning(
            "reader %s: position %s is gone from the stream (data lost or "
            "trimmed); ending %d streams so readers resync",
            self.channel,
            self.position,
            len(self.subscribers),
        )
        self.position = await store.last_id(self.channel)
        self.drop_all()
        self._hub.metrics.resyncs.labels(self.channel).inc()

    async def _gap_before(self, entries: Sequence[Entry]) -> bool:
        """A reader that falls further behind than the history can find its position
        trimmed away: XREAD then silently starts at the oldest entry left. Only a big
        batch can follow such a gap, so only then do we check; on a gap every stream is
        ended and its reader comes back to a ``reset``, never to a silent hole."""
        ch = self._hub.settings.channel(self.channel)
        limit = min(self._hub.settings.read_batch, ch.history_max_items if ch else 1)
        if len(entries) < limit or self.position == "0-0":
            return False
        if await self._hub.store.knows(self.channel, self.position):
            return False
        log.warning(
            "reader %s: fell behind the history (position %s trimmed); ending %d "
            "streams so readers resync",
            self.channel,
            self.position,
            len(self.subscribers),
        )
        self.position = entries[-1].id
        self.drop_all()
        self._hub.metrics.resyncs.labels(self.channel).inc()
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
        self.position = entries[-1].id
        if not events:
            return
        batch = Batch(events, first, last)
        metrics = self._hub.metrics
        # A copy: a stream that ends during its write leaves the set.
        for sub in deliver(batch, list(self.subscribers)):
            self.leave(sub)
            metrics.cut_off.labels(self.channel).inc()
            log.info(
                "reader %s: cut off a subscriber %s events behind",
                self.channel,
                self._hub.settings.subscriber_buffer,
            )
        reach = self._hub.reach
        if reach is not None and self.per_filter:
            # Once per batch, over the distinct filters: never per delivery.
            filters = self.per_filter.items()
            counts = {e.uri: sum(n for f, n in filters if e.wanted(f)) for e in events if e.uri}
            reach.add(self.channel, counts)
        # Per batch, not per delivery: the cost does not grow with the number of readers.
        self._delivered.inc(len(events) * len(self.subscribers))
        now_ms = now.timestamp() * 1000
        latency = self._latency
        for event in events:
            latency.observe(max(0.0, (now_ms - event.key[0]) / 1000))


def _decode(entry: Entry, channel: str, now: datetime) -> Event | None:
    try:
        return decode(entry.id, entry.fields, channel, now)
    except Exception:  # one bad entry must never stop a channel's live updates
        log.exception("reader %s: skipping entry %s", channel, entry.id)
        return None


class Hub:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        metrics: Metrics,
        snapshot: Callable[[str], Awaitable[tuple[str, list[Item]]]],
        reach: Reach | None = None,
    ) -> None:
        self.store = store
        # Where the fan-out counts deliveries (reach.py); None: not counted.
        self.reach = reach
        self.settings = settings
        self.metrics = metrics
        # The desk's current items of a channel (``Desk.current``), read through ``current``.
        self._snapshot = snapshot
        self._readers: dict[str, ChannelReader] = {}
        self._filters: dict[Filter, Filter] = {}
        self._closed = False
        self.connections = 0
        self._by_address: dict[str, int] = {}

    def filter(self, flt: Filter) -> Filter:
        """One object per distinct filter: the fan-out's per-filter lookups (``Batch``)
        then hit by identity. Bounded, so odd query strings cannot grow it without end."""
        shared = self._filters.get(flt)
        if shared is None and len(self._filters) < FILTERS_MAX:
            shared = self._filters[flt] = flt
        return shared or flt

    def has_room(self, address: str) -> bool:
        """Whether ``admit`` would take a connection from ``address`` now."""
        cap = self.settings.max_readers_per_ip
        return self.connections < self.settings.max_readers and not (
            cap and self._by_address.get(address, 0) >= cap
        )

    def admit(self, address: str) -> bool:
        """Count a new SSE connection against the caps; False when over one."""
        if not self.has_room(address):
            self.metrics.refused.inc()
            return False
        self.connections += 1
        self._by_address[address] = self._by_address.get(address, 0) + 1
        return True

    def leave(self, address: str) -> None:
        self.connections -= 1
        left = self._by_address.get(address, 1) - 1
        if left:
            self._by_address[address] = left
        else:
            self._by_address.pop(address, None)

    @property
    def reader_count(self) -> int:
        return len(self._readers)

    def cached(self, channel: str) -> Snapshot | None:
        """The channel's current items if they are known at its reader's position now."""
        reader = self._readers.get(channel)
        return reader.snapshot if reader is not None else None

    async def current(self, channel: str) -> Snapshot:
        """The channel's current items, with their events, as of a stream position.

        Read (``snapshot``, the desk's) once per position of the channel's reader, not once
        per connection: after a deploy, thousands of readers reconnect within seconds, and
        each used to cost a snapshot read and the validation of every item. Readers that
        connect while a read is under way wait for it instead of starting their own.
        Every change to the ticker is a stream entry, so the position moving is what makes
        a snapshot stale; callers still check each item's ``visible_at`` (time passes).
        """
        reader = self._readers.get(channel)
        if reader is None:
            return await self._load(channel, None)
        if reader.snapshot is not None:
            return reader.snapshot
        # A caller is registered (``join``) before it asks: live batches after the reader's
        # position now reach it. A snapshot from at least that position leaves no gap.
        floor = entry_key(reader.position)
        loading = reader.loading
        if loading is not None:
            with contextlib.suppress(Exception):  # its own caller reports the failure
                shared = await asyncio.shield(loading)
                if entry_key(shared[0]) >= floor:
                    return shared
        loading = reader.loading = asyncio.get_running_loop().create_future()
        try:
            snapshot = await self._load(channel, reader)
        except BaseException:
            # Waiters fall back to a read of their own (and report its failure, if any).
            loading.set_exception(LookupError("the shared snapshot read failed"))
            loading.exception()  # retrieved: no "never retrieved" warning
            raise
        finally:
            if reader.loading is loading:
                reader.loading = None
        loading.set_result(snapshot)
        return snapshot

    async def _load(self, channel: str, reader: ChannelReader | None) -> Snapshot:
        position, items = await self._snapshot(channel)
        snapshot = (position, [(item, item_event(item)) for item in items])
        # Only a snapshot at exactly the reader's position can be kept: the live batches
        # of every later subscriber start right after it.
        if reader is not None and position == reader.position:
            reader.snapshot = snapshot
        return snapshot

    def subscribers(self, channel: str) -> list[Subscriber]:
        reader = self._readers.get(channel)
        return list(reader.subscribers) if reader else []

    def subscriber_count(self, channel: str) -> int:
        return len(self.subscribers(channel))

    def join(self, channel: str, sub: Subscriber) -> ChannelReader | None:
        """Register ``sub`` for the channel's live events (starting its reader if need be);
        None, with ``sub`` closed, once the hub is shutting down."""
        if self._closed:
            sub.close()
            return None
        reader = self._readers.get(channel)
        if reader is None:
            reader = self._readers[channel] = ChannelReader(self, channel)
        reader.join(sub)
        self.metrics.child(self.metrics.readers, channel).inc()
        return reader

    def part(self, channel: str, reader: ChannelReader, sub: Subscriber) -> None:
        """The end of ``join``: however the stream ended."""
        sub.close()  # its heartbeat timer too
        reader.leave(sub)
        self.metrics.child(self.metrics.readers, channel).dec()
        if not reader.subscribers and self._readers.get(channel) is reader:
            # The last reader left: stop the XREAD loop until someone comes back.
            del self._readers[channel]
            reader.stop()

    @staticmethod
    async def ready(reader: ChannelReader) -> None:
        """Wait until the channel's reader has a position (it has reached Redis)."""
        if reader.ready.is_set():
            return
        try:
            async with asyncio.timeout(READY_WAIT_S):
                await reader.ready.wait()
        except TimeoutError:
            raise StoreUnavailable(
                "Redis is unavailable (the channel's reader cannot start)"
            ) from None

    @asynccontextmanager
    async def subscribe(self, channel: str, flt: Filter) -> AsyncIterator[Subscriber]:
        """Register for live events; waits until the channel's reader has a position."""
        sub = Subscriber(flt, self.settings.subscriber_buffer)
        reader = self.join(channel, sub)
        if reader is None:
            yield sub
            return
        try:
            await self.ready(reader)
            yield sub
        finally:
            self.part(channel, reader, sub)

    def begin_shutdown(self) -> None:
        """End every subscription now (on SIGTERM, before the server drains connections):
        each stream sends a last ``retry:`` and completes, so draining is quick."""
        if self._closed:
            return
        self._closed = True
        log.info(
            "shutting down: ending %d streams",
            sum(len(r.subscribers) for r in self._readers.values()),
        )
        for reader in self._readers.values():
            for sub in list(reader.subscribers):
                sub.close()

    async def close(self) -> None:
        """End every subscription and stop every reader (the lifespan's shutdown)."""
        self.begin_shutdown()
        readers = list(self._readers.values())
        self._readers.clear()
        for reader in readers:
            reader.stopped = True
        await asyncio.gather(*(tasks.stop(reader.task) for reader in readers))
