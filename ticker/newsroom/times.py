"""When an item is on the ticker: its expiry and its embargo, from what the editor asked
for and the channel's retention (``history_max_age``); 422 naming the field otherwise."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ticker.domain.duration import format_duration
from ticker.domain.models import Item, ItemPatch
from ticker.domain.when import When
from ticker.newsroom.commit import _field_error
from ticker.settings import Channel


def expiry(
    ch: Channel,
    now: datetime,
    *,
    start: datetime,
    ttl: timedelta | None,
    expires_at: datetime | None,
    default: datetime | None,
) -> datetime:
    """Apply the retention rules to what the editor asked for (422 naming the field)."""
    limit = ch.history_max_age
    if ttl is not None and expires_at is not None:
        raise _field_error("ttl", "give either ttl or expires_at, not both")
    if ttl is not None:
        if ttl > limit:
            raise _field_error(
                "ttl",
                f"must be between 1s and {format_duration(limit)} (the channel's history_max_age)",
            )
        return start + ttl
    if expires_at is not None:
        if expires_at <= now:
            raise _field_error("expires_at", "must be in the future")
        if expires_at > now + limit:
            raise _field_error(
                "expires_at",
                f"must be at most {format_duration(limit)} from now"
                " (the channel's history_max_age)",
            )
        return expires_at
    return default if default is not None else start + ch.item_ttl


def embargo_time(
    ch: Channel, now: datetime, *, until: datetime | None, embargo: When | None
) -> datetime | None:
    """The release time: ``embargoed_until``, or ``embargo`` as typed (when.py, in the
    channel's time zone); 422 naming the field: both at once, in the past, or beyond
    the channel's history."""
    field, value = "embargoed_until", until
    if embargo is not None:
        if value is not None:
            raise _field_error("embargo", "give either embargo or embargoed_until, not both")
        try:
            field, value = "embargo", embargo.resolve(now, ch.zone)
        except ValueError as exc:
            raise _field_error("embargo", str(exc)) from None
    if value is None:
        return None
    if value <= now:
        raise _field_error(field, "must be in the future")
    if value > now + ch.history_max_age:
        raise _field_error(
            field,
            f"must be at most {format_duration(ch.history_max_age)}"
            " from now (the channel's history_max_age)",
        )
    return value


def moved_embargo(
    ch: Channel, current: Item, patch: ItemPatch, changes: dict[str, Any], now: datetime
) -> datetime | None:
    """The embargo after a correction: set or moved (only while the item still waits
    for it), lifted (``embargoed_until: null``), or as it was."""
    given = [f for f in ("embargo", "embargoed_until") if f in changes]
    waiting = current.embargoed_until is not None and current.embargoed_until > now
    if not given:
        return current.embargoed_until
    if len(given) == 2:
        raise _field_error("embargo", "give either embargo or embargoed_until, not both")
    if given == ["embargoed_until"] and patch.embargoed_until is None:
        # Lift it: on air now. An item not waiting has nothing to lift (no new version).
        return None if waiting else current.embargoed_until
    if not waiting:
        state = "is on air" if current.visible_at(now) else "has no embargo to move"
        raise _field_error(
            given[0],
            f"an embargo can only be set or moved while the item waits for it; this one {state}",
        )
    return embargo_time(ch, now, until=patch.embargoed_until, embargo=patch.embargo)
