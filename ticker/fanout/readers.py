"""One channel's readers in this process, in their two audiences, and the fan-out of each
batch to them (``channel.py`` reads the batches).

The loop hands the same ``Batch`` to every subscriber (``subscriber.deliver``), which
writes it to its socket or queues it. A subscriber more than ``subscriber_buffer`` events
behind is cut off: its stream ends, the browser comes back with ``Last-Event-ID``, and
memory never grows with a slow reader (Mercure's rule).

The desk's readers (a token's stream) are a set of their own, with batches of their own
(``events.desk_decode``: every entry, every field), made only while one is connected. So
an anonymous reader's delivery does the same work, to the instruction, with or without
them, and no desk frame can reach it: the two audiences never share a batch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from ticker.domain.events import Event, Filter, desk_decode
from ticker.fanout.onair import OnAir
from ticker.fanout.subscriber import Batch, Subscriber, deliver
from ticker.newsroom.reach import Reach
from ticker.ops.metrics import Metrics
from ticker.settings import Settings
from ticker.store import Entry

log = logging.getLogger("ticker.channel")


class Readers:
    """The subscribers of one channel: the public ones, with their distinct filters and
    what reach counts, and the desk's."""

    __slots__ = (
        "_delivered",
        "_filters",
        "_latency",
        "_metrics",
        "_per_filter",
        "_reach",
        "_settings",
        "channel",
        "desk_subscribers",
        "on_air",
        "subscribers",
    )

    def __init__(
        self, channel: str, *, settings: Settings, metrics: Metrics, reach: Reach | None
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
        # first snapshot the channel's reader keeps (until then, every live item counts).
        self.on_air = OnAir()
        self._settings = settings
        self._metrics = metrics
        self._reach = reach  # where the fan-out counts who was shown what; None: not
        self._delivered = metrics.child(metrics.delivered, channel)
        self._latency = metrics.child(metrics.latency, channel)

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

    def public(self, batch: Batch, now: datetime) -> None:
        """The public batch to every public reader; reach and metrics once per batch."""
        events = batch.events
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

    def desk(self, entries: Sequence[Entry], first: tuple[int, int], last: tuple[int, int]) -> None:
        """The desk's readers' batch: every entry in the desk's view; not kept for
        openings (a desk reader reads its own) and never counted towards reach."""
        events: list[Event] = []
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
