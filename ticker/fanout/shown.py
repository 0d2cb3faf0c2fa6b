"""What a filter's new readers are shown on opening (``Shown``), framed once and kept
for the next readers with the same filter (``Shows``, one per process's ``Feed``).

Why: a storm of readers with one filter (after a deploy, a push alert) would otherwise
frame the ticker once per reader. Query strings are the client's to choose, and filters
that come and go must not each keep a copy of the ticker: the cache is bounded in bytes
(``SHOWN_BYTES_MAX``), least recently used first out.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

from ticker.domain.events import Filter
from ticker.domain.models import Item, Status
from ticker.domain.streamid import entry_key
from ticker.fanout.recent import Opening, Snapshot

# Bytes of openings kept for the next reader with the same filter (``Shows``).
SHOWN_BYTES_MAX = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Shown:
    """What a filter's new readers are shown from one opening, until ``until`` (epoch s);
    ``position`` is the last event it accounts for."""

    snapshot: Snapshot
    until: float
    position: tuple[int, int]
    frames: bytes
    uris: dict[str, int]


class Shows:
    """The ``Shown`` of each filter whose readers opened lately, bounded in bytes."""

    __slots__ = ("_bytes", "_next", "_shows")

    def __init__(self) -> None:
        self._shows: OrderedDict[Filter, Shown] = OrderedDict()
        self._bytes = 0
        self._next: tuple[Snapshot, float] | None = None  # ``_next_change``

    def shown(self, flt: Filter, opening: Opening) -> Shown:
        """What a filter's reader is shown on opening: the snapshot's items, brought up
        to date by the batches since (a correction in place, a new item after the rest,
        a removed item left out: never its text). Framed once and kept until the opening
        moves on or an item's embargo or expiry changes it: a storm of readers with the
        same filter shares the bytes."""
        now = time.time()
        kept = self._shows.get(flt)
        if (
            kept is not None
            and kept.snapshot is opening.snapshot
            and kept.position == opening.position
            and now < kept.until
        ):
            self._shows.move_to_end(flt)
            return kept
        position, current = opening.snapshot
        start = entry_key(position)
        at = datetime.fromtimestamp(now, UTC)
        shown = {ev.uri: ev.frame for item, ev in current if ev.wanted(flt) and item.visible_at(at)}
        for batch in opening.since:
            for ev in batch.events:
                if ev.key <= start:
                    continue
                if ev.uri and ev.wanted(flt):
                    shown[ev.uri] = ev.frame
                else:
                    shown.pop(ev.uri or ev.removes, None)
        kept = Shown(
            opening.snapshot,
            self._next_change(opening.snapshot, now),
            max(start, opening.position),
            b"".join(shown.values()),
            dict.fromkeys(shown, 1),
        )
        self._keep(flt, kept)
        return kept

    def _next_change(self, snapshot: Snapshot, now: float) -> float:
        """When the next item of ``snapshot`` comes out of embargo or expires: the same
        for every filter, so worked out once per snapshot (per filter, it was a large part
        of a new filter's opening: docs/performance.md)."""
        kept = self._next
        if kept is None or kept[0] is not snapshot or kept[1] <= now:
            _, current = snapshot
            changes = (t for item, _ in current for t in _changes(item) if t > now)
            kept = self._next = (snapshot, min(changes, default=math.inf))
        return kept[1]

    def _keep(self, flt: Filter, shown: Shown) -> None:
        """Keep ``shown`` for ``flt``'s next readers; the least recently used go first
        once the kept bytes pass ``SHOWN_BYTES_MAX``."""
        shows = self._shows
        old = shows.pop(flt, None)
        if old is not None:
            self._bytes -= _size(old)
        size = _size(shown)
        if size > SHOWN_BYTES_MAX // 4:
            return  # one huge view would push out every other: built per reader instead
        shows[flt] = shown
        self._bytes += size
        while self._bytes > SHOWN_BYTES_MAX:
            _, dropped = shows.popitem(last=False)
            self._bytes -= _size(dropped)


def _changes(item: Item) -> list[float]:
    """When an item's visibility can change by itself (time passing)."""
    if item.status is not Status.USABLE:
        return []
    times = [item.expires_at.timestamp()]
    if item.embargoed_until is not None:
        times.append(item.embargoed_until.timestamp())
    return times


def _size(shown: Shown) -> int:
    """What a kept view costs beyond the shared snapshot: its bytes, its URIs, and the
    entry itself (the filter with its sets, the ``Shown``, the dict node: measured with
    tracemalloc and rounded up, docs/performance.md)."""
    return len(shown.frames) + 100 * len(shown.uris) + 1000
