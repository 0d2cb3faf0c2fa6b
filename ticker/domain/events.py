"""Events: a stream entry decoded and framed once, shared by every reader, and the
filters readers choose.

Deliberate choices:
- Entries from other writers are input like any request (``entry_item``): bytes that
  are not UTF-8 arrive as U+FFFD (the Redis clients decode with ``errors="replace"``), and
  an entry that still is not an item (not JSON, not an object, nested too deep, a lone
  surrogate, a field missing, too big) is skipped with one warning per entry per process.
  It never stops a channel, a replay or a history page.
- Two audiences (README, "Two audiences"). ``decode`` makes what anonymous readers get:
  an ``item`` event carries the public view (no ``author``), only while the item is on
  the ticker, and an advisory never shows, not even as a removal (its kind never changes,
  so no reader ever held it). ``desk_decode`` makes what a token's stream gets: every
  entry, in the desk's view. Each is decoded once per entry per process.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import ValidationError

from ticker.domain.frames import REMOVE_REASONS, frame
from ticker.domain.models import URGENCY_MAX, Item, Kind
from ticker.domain.notices import entry_notice
from ticker.domain.streamid import entry_key

log = logging.getLogger("ticker.events")

# The largest ``item`` field we parse. Our own entries are a few KB at most (a 280-character
# headline, a 2,048-character link); a bigger one is another writer's mistake, skipped
# without parsing it (a denial-of-service guard: one huge entry is read by every replay).
ENTRY_ITEM_MAX = 64 * 1024
# A remove entry's uri: ours are at most 64 characters (models.URI).
_REMOVE_URI_MAX = 1024
# Skipped entries already warned about in this process (bounded; cleared when full).
_WARNED: set[tuple[str, str, int]] = set()
_WARNED_MAX = 10_000


@dataclass(frozen=True, slots=True)
class Filter:
    """A reader's facets: any of the regions, any of the categories, urgency at most N.

    An item with no regions is global (a flash for everyone): it matches every region
    filter; the same for categories. Replay and live both decide here.
    """

    regions: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    max_urgency: int = URGENCY_MAX
    # Filters key the fan-out's per-filter caches, several lookups per connect.
    _hash: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.regions, self.categories, self.max_urgency)))

    def __hash__(self) -> int:
        return self._hash

    def matches(self, regions: frozenset[str], categories: frozenset[str], urgency: int) -> bool:
        if self.regions and regions and not (self.regions & regions):
            return False
        if self.categories and categories and not (self.categories & categories):
            return False
        return urgency <= self.max_urgency

    @property
    def everything(self) -> bool:
        return not self.regions and not self.categories and self.max_urgency >= URGENCY_MAX


EVERYTHING = Filter()


@dataclass(frozen=True, slots=True)
class Event:
    """A decoded entry: its position, what a filter needs, and its frames.

    ``otherwise`` is what a reader whose filter does not match gets: nothing for a new
    item, a ``remove`` for a correction (it may hold the earlier version, which did
    match), and the same ``remove`` for removals, which go to every reader.
    """

    key: tuple[int, int]
    frame: bytes
    regions: frozenset[str]
    categories: frozenset[str]
    urgency: int
    otherwise: bytes = b""
    uri: str = ""  # the item's, for an ``item`` event: what its reach is counted against
    removes: str = ""  # the item's, for a ``remove`` event

    def frame_for(self, flt: Filter) -> bytes:
        if flt.everything or flt.matches(self.regions, self.categories, self.urgency):
            return self.frame
        return self.otherwise

    def wanted(self, flt: Filter) -> bool:
        return flt.everything or flt.matches(self.regions, self.categories, self.urgency)


def item_event(item: Item) -> Event:
    """The ``item`` event for one version, with that version's id."""
    return _version_event(item, item.public_json())


def desk_event(item: Item) -> Event:
    """The desk's ``item`` event for one version, whatever its state: every field."""
    return _version_event(item, item.model_dump_json())


def _version_event(item: Item, body: str) -> Event:
    """One version's ``item`` event with ``body`` (the public view or the desk's); a
    correction's ``remove`` (filter) for readers it has moved out of."""
    otherwise = b""
    if item.version > 1:
        otherwise = frame("remove", item.id, {"uri": item.uri, "reason": "filter"})
    return Event(
        entry_key(item.id),
        frame("item", item.id, body),
        frozenset(item.regions),
        frozenset(item.categories),
        item.urgency,
        otherwise,
        item.uri,
    )


class BadEntry(ValueError):
    """A stream entry that is not one of ours: skipped, never allowed to break a stream."""


def entry_item(entry_id: str, fields: dict[str, str], channel: str) -> Item:
    """The item an entry carries, checked like any input (``BadEntry`` when it is not)."""
    text = fields.get("item") or ""
    if len(text) > ENTRY_ITEM_MAX:
        raise BadEntry(f"item field is {len(text)} characters (at most {ENTRY_ITEM_MAX})")
    try:
        raw = json.loads(text or "{}")
        if not isinstance(raw, dict):
            raise BadEntry("item is not a JSON object")
        raw["id"] = entry_id
        raw.setdefault("channel", channel)
        item = Item.model_validate(raw)
        # What every reader will be sent must encode (no lone surrogates), and its times
        # must convert to UTC (a date near year 1 or 9999 overflows there).
        item.model_dump_json()
        times = (item.created_at, item.updated_at, item.expires_at, item.embargoed_until)
        for moment in (*times, item.corrected_at):
            if moment is not None and moment.tzinfo is None:
                raise BadEntry("a time without a time zone")
            if moment is not None:
                moment.astimezone(UTC)
    except BadEntry:
        raise
    except (ValueError, ValidationError, TypeError, RecursionError, OverflowError) as exc:
        lines = str(exc).splitlines()
        raise BadEntry(lines[0] if lines else type(exc).__name__) from None
    return item


def skipped(entry_id: str, fields: dict[str, str], channel: str, exc: Exception) -> None:
    """Log a skipped entry once per process, not once per replay or history page."""
    # The item's hash too: the id alone is not unique across key prefixes in one process.
    key = (channel, entry_id, hash(fields.get("item")))
    if key in _WARNED:
        return
    if len(_WARNED) >= _WARNED_MAX:
        _WARNED.clear()
    _WARNED.add(key)
    log.warning("skipping malformed entry %s in channel %s: %s", entry_id, channel, exc)


def remove_data(uri: str, reason: str, fields: dict[str, str]) -> dict[str, str]:
    """What readers get of a removal: which item, why, and a kill's note when the entry
    carries one for them (notices.py); the same for a live reader, a replay and history."""
    data = {"uri": uri, "reason": reason}
    notice = entry_notice(fields) if reason == "kill" else None
    if notice is not None:
        data["notice"] = notice
    return data


def decode(entry_id: str, fields: dict[str, str], channel: str, now: datetime) -> Event | None:
    """Turn a stream entry into an event for readers; ``None`` when readers see nothing.

    Entries written by other services are checked like our own: a malformed one is
    logged and skipped, never allowed to break a stream.
    """
    kind = fields.get("type")
    try:
        if kind == "item":
            item = entry_item(entry_id, fields, channel)
            if not item.visible_at(now):
                return None
            return item_event(item)
        if kind == "remove":
            uri, reason = _removal(fields)
            if _advisory(fields.get("item")):
                return None  # never shown, so nothing to take off (its uri stays the desk's)
            data = frame("remove", entry_id, remove_data(uri, reason, fields))
            return Event(
                entry_key(entry_id), data, frozenset(), frozenset(), URGENCY_MAX, data, removes=uri
            )
    except (ValueError, ValidationError, TypeError, RecursionError, OverflowError) as exc:
        skipped(entry_id, fields, channel, exc)
        return None
    return None  # an entry type from a future schema: not for readers of this version


def desk_decode(entry_id: str, fields: dict[str, str], channel: str) -> Event | None:
    """An entry as a token's stream gets it: every ``item`` entry (held, embargoed,
    advisories), with every field; every ``remove``, with the version it wrote under
    ``item`` when that is an item. ``None`` for what is not an entry of ours."""
    kind = fields.get("type")
    try:
        if kind == "item":
            return desk_event(entry_item(entry_id, fields, channel))
        if kind == "remove":
            uri, reason = _removal(fields)
            body: dict[str, object] = {"uri": uri, "reason": reason}
            # (Not an item: a purge's notice, or another writer's; the removal stands alone.)
            with contextlib.suppress(BadEntry):
                body["item"] = entry_item(entry_id, fields, channel).model_dump(mode="json")
            data = frame("remove", entry_id, body)
            return Event(
                entry_key(entry_id), data, frozenset(), frozenset(), URGENCY_MAX, data, removes=uri
            )
    except (ValueError, ValidationError, TypeError, RecursionError, OverflowError) as exc:
        skipped(entry_id, fields, channel, exc)
        return None
    return None


def _removal(fields: dict[str, str]) -> tuple[str, str]:
    """A remove entry's uri and reason, checked (``BadEntry``); its ``item`` is not needed."""
    reason = fields.get("reason", "")
    uri = fields.get("uri", "")
    # Any text goes out literally (JSON-escaped); only its size is bounded.
    if reason not in REMOVE_REASONS or not uri or len(uri) > _REMOVE_URI_MAX:
        raise BadEntry(f"bad remove entry (reason {reason[:40]!r}, uri {uri[:40]!r})")
    return uri, reason


def _advisory(text: str | None) -> bool:
    """Whether a removal's ``item`` is an advisory. Parsed only when the text could say
    so; anything unreadable is not one (the removal then goes out, as any other)."""
    if not text or '"advisory"' not in text or len(text) > ENTRY_ITEM_MAX:
        return False
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):
        return False
    return isinstance(raw, dict) and raw.get("kind") == Kind.ADVISORY
