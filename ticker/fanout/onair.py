"""Reach, counted as readers: which items each channel has on air, per reader filter, so
that an item reaches a connection once, however often it is corrected.

A reader is one connection. It is counted for an item when the item is first shown to it:
in its opening (``feed.py``, the current items), or live, when the item goes on air for
the reader's filter (a new item, an embargo's release, a hold lifted, a correction whose
regions or categories now match the filter). A correction of an item the reader already
has is not counted again, nor is a returning reader's replay, nor a stream opened with
``reach=off`` (the desk's own stream and preview). Each process counts its own
connections; ``reach.py`` adds them up in Redis, so the sum is across the fleet.

The cost is per batch and per distinct filter, never per reader: ``counts`` looks at the
few distinct filters of the channel's counted readers.
"""

from __future__ import annotations

from collections.abc import Iterable

from ticker.domain.events import Event, Filter


class OnAir:
    """One channel's items on air (their last shown event) and its counted readers."""

    __slots__ = ("_readers", "_shown")

    def __init__(self) -> None:
        self._shown: dict[str, Event] = {}  # uri -> the version on air
        self._readers: dict[Filter, int] = {}  # counted readers per filter

    def join(self, flt: Filter) -> None:
        self._readers[flt] = self._readers.get(flt, 0) + 1

    def leave(self, flt: Filter) -> None:
        left = self._readers.get(flt, 1) - 1
        if left:
            self._readers[flt] = left
        else:
            self._readers.pop(flt, None)

    def clear_readers(self) -> None:
        self._readers.clear()

    def restart(self, current: Iterable[Event], since: Iterable[Event] = ()) -> None:
        """What is on air: a snapshot's items, and the events after it (not counted)."""
        shown = self._shown = {event.uri: event for event in current if event.uri}
        for event in since:
            if event.uri:
                shown[event.uri] = event
            else:
                shown.pop(event.removes, None)

    def counts(self, events: Iterable[Event]) -> dict[str, int]:
        """Apply a batch; for each item, the counted readers it newly reached."""
        counts: dict[str, int] = {}
        shown, readers = self._shown, self._readers.items()
        for event in events:
            uri = event.uri
            if not uri:
                shown.pop(event.removes, None)  # off air: a later return counts again
                continue
            before = shown.get(uri)
            shown[uri] = event
            reached = sum(
                n
                for flt, n in readers
                if event.wanted(flt) and (before is None or not before.wanted(flt))
            )
            if reached:
                counts[uri] = counts.get(uri, 0) + reached
        return counts
