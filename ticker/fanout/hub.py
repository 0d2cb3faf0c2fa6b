"""The process's registry of channel readers (``channel.py``): one XREAD loop per
channel with readers, started by the first, stopped with the last; the connection caps
(total and per address); the shared snapshot read that opens new readers; shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from ticker.domain.errors import StoreUnavailable
from ticker.domain.events import Filter, item_event
from ticker.domain.models import Item
from ticker.domain.streamid import entry_key
from ticker.fanout.channel import ChannelReader
from ticker.fanout.recent import Opening, Snapshot
from ticker.fanout.subscriber import Subscriber
from ticker.newsroom.reach import Reach
from ticker.ops import tasks
from ticker.ops.metrics import Metrics
from ticker.settings import Settings
from ticker.store import Store

log = logging.getLogger("ticker.hub")

# How long a new stream waits for its channel's reader to reach Redis before a 503.
READY_WAIT_S = 5.0


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
        self._closed = False
        self._draining = False
        self.connections = 0
        self._by_address: dict[str, int] = {}

    def has_room(self, address: str) -> bool:
        """Whether ``admit`` would take a connection from ``address`` now."""
        cap = self.settings.max_readers_per_ip
        return self.connections < self.settings.max_readers and not (
            cap and self._by_address.get(address, 0) >= cap
        )

    def readers_from(self, address: str) -> int:
        """Readers counted against ``address`` (``TICKER_MAX_READERS_PER_IP``)."""
        return self._by_address.get(address, 0)

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

    def opening(self, channel: str) -> Opening | None:
        """A new reader's opening without a read, if the channel's reader has one."""
        reader = self._readers.get(channel)
        return reader.opening() if reader is not None else None

    async def current(self, channel: str) -> Opening:
        """A new reader's opening: the current items as of a stream position, and the
        batches fanned out since (``recent.py``).

        One snapshot read (the desk's ``snapshot``) serves every reader that connects
        until the kept batches no longer reach back to it: after a deploy, thousands of
        readers reconnect within seconds, and each used to cost a snapshot read and the
        validation of every item. Readers that connect while a read is under way wait
        for it instead of starting their own. Callers still check each item's
        ``visible_at`` (time passes).
        """
        reader = self._readers.get(channel)
        if reader is None:
            snapshot = await self._load(channel)
            return Opening(snapshot, [], entry_key(snapshot[0]))
        opening = reader.opening()
        if opening is not None:
            return opening
        # A caller is registered (``join``) before it asks: live batches after the reader's
        # position now reach it. A snapshot from at least that position leaves no gap.
        floor = entry_key(reader.position)
        loading = reader.loading
        if loading is not None:
            with contextlib.suppress(Exception):  # its own caller reports the failure
                shared = await asyncio.shield(loading)
                opening = reader.opening()
                if opening is not None:
                    return opening
                if entry_key(shared[0]) >= floor:
                    return Opening(shared, [], entry_key(shared[0]))
        loading = reader.loading = asyncio.get_running_loop().create_future()
        try:
            snapshot = await self._load(channel)
        except BaseException:
            # Waiters fall back to a read of their own (and report its failure, if any).
            loading.set_exception(LookupError("the shared snapshot read failed"))
            loading.exception()  # retrieved: no "never retrieved" warning
            raise
        finally:
            if reader.loading is loading:
                reader.loading = None
        loading.set_result(snapshot)
        if reader.keep(snapshot) and (opening := reader.opening()) is not None:
            return opening
        # Older than the kept batches (many batches went by during the read): still
        # good for this caller, registered before the read began.
        return Opening(snapshot, [], entry_key(snapshot[0]))

    async def _load(self, channel: str) -> Snapshot:
        position, items = await self._snapshot(channel)
        return position, [(item, item_event(item)) for item in items]

    def subscribers(self, channel: str) -> list[Subscriber]:
        """Every reader of the channel in this process: anonymous, then the desk's."""
        reader = self._readers.get(channel)
        return [*reader.subscribers, *reader.desk_subscribers] if reader else []

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
            reader = self._readers[channel] = ChannelReader(
                channel,
                store=self.store,
                settings=self.settings,
                metrics=self.metrics,
                reach=self.reach,
            )
        reader.join(sub)
        self.metrics.child(self.metrics.readers, channel).inc()
        return reader

    def part(self, channel: str, reader: ChannelReader, sub: Subscriber) -> None:
        """The end of ``join``: however the stream ended."""
        sub.close()  # its heartbeat timer too
        reader.leave(sub)
        self.metrics.child(self.metrics.readers, channel).dec()
        if reader.idle and self._readers.get(channel) is reader:
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
    async def subscribe(
        self, channel: str, flt: Filter, *, counted: bool = True, desk: bool = False
    ) -> AsyncIterator[tuple[Subscriber, ChannelReader | None]]:
        """Registered for live events while inside (the desk's events with ``desk``);
        the channel's reader is None once the hub is shutting down (``sub`` is closed
        then). ``Feed.first`` waits for it."""
        sub = Subscriber(flt, self.settings.subscriber_buffer, counted=counted, desk=desk)
        reader = self.join(channel, sub)
        if reader is None:
            yield sub, None
            return
        try:
            yield sub, reader
        finally:
            self.part(channel, reader, sub)

    @property
    def draining(self) -> bool:
        """True from the stop signal on: ``/readyz`` answers 503 (the drain, then the end)."""
        return self._draining or self._closed

    def begin_drain(self) -> None:
        """The stop signal came: everything still works, but ``/readyz`` says not ready."""
        self._draining = True

    def begin_shutdown(self) -> None:
        """End every subscription now (on SIGTERM, before the server drains connections):
        each stream sends a last ``retry:`` and completes, so draining is quick."""
        if self._closed:
            return
        self._closed = True
        log.info(
            "shutting down: ending %d streams",
            sum(len(self.subscribers(channel)) for channel in self._readers),
        )
        # A copy: a stream served natively leaves at once, and its reader with its last.
        for channel in list(self._readers):
            for sub in self.subscribers(channel):
                sub.close()

    async def close(self) -> None:
        """End every subscription and stop every reader (the lifespan's shutdown)."""
        self.begin_shutdown()
        readers = list(self._readers.values())
        self._readers.clear()
        for reader in readers:
            reader.stopped = True
        await asyncio.gather(*(tasks.stop(reader.task) for reader in readers))
