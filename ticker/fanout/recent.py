"""One channel reader's recent batches and the snapshot they keep usable: what a new
reader opens from (``Opening``).

Why: a new reader's opening is a snapshot of the current items plus the batches fanned
out since it was read. So one snapshot read serves every reader that connects for the
next ``RECENT_MAX`` batches, instead of one read per position (that is, per item
published) while a storm of readers connects during a busy story.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from ticker.domain.events import Event
from ticker.domain.models import Item
from ticker.domain.streamid import entry_key
from ticker.fanout.subscriber import Batch

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


class Recent:
    """A channel reader's position, the public batches fanned out after ``floor`` (up to
    ``RECENT_MAX``), and the current items as of some position not before ``floor``."""

    __slots__ = ("_opening", "batches", "floor", "position", "snapshot")

    def __init__(self) -> None:
        self.position = "0-0"  # the last stream entry fanned out (or started from)
        self.snapshot: Snapshot | None = None
        self.batches: deque[Batch] = deque()
        self.floor = (0, 0)
        self._opening: Opening | None = None  # ``opening()``, until either moves

    def restart_at(self, entry_id: str) -> None:
        """Go on from ``entry_id``, which does not follow what was fanned out before:
        nothing kept from before it can be built on."""
        self.position = entry_id
        self.snapshot = self._opening = None
        self.batches.clear()
        self.floor = entry_key(entry_id)

    def moved(self, entry_id: str, batch: Batch | None) -> None:
        """Fanned out up to ``entry_id``: ``batch``, the public one (None: no public
        event in it). Kept before it is delivered, once per batch."""
        self.position, self._opening = entry_id, None
        if batch is not None:
            batches = self.batches
            batches.append(batch)
            if len(batches) > RECENT_MAX:
                self.floor = batches.popleft().last

    def keep(self, snapshot: Snapshot) -> bool:
        """Keep ``snapshot`` for later readers unless it is older than the batches kept.
        One read a little ahead of the reader (an entry it has not fanned out yet) is
        kept too: a reader opening from it skips the live batches it already holds."""
        if entry_key(snapshot[0]) < self.floor:
            return False
        self.snapshot, self._opening = snapshot, None
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
        if at < self.floor:
            self.snapshot = None
            return None
        since = [batch for batch in self.batches if batch.last > at]
        self._opening = Opening(snapshot, since, max(at, entry_key(self.position)))
        return self._opening
