"""What every editorial action shares: the channel lookup, the reads a change starts
from, and the one commit through which every version is written (``store.items.commit``: a Lua
script that checks the version the change started from, so two editors correcting the
same item at once never lose an edit: the loser re-reads and retries)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from ticker.domain.errors import InvalidRequest, NotFound, Stale, TickerError, TooManyPins
from ticker.domain.models import PIN_MAX, Item, Status, utcnow
from ticker.newsroom import signoff
from ticker.newsroom.aof import AofRewrites
from ticker.newsroom.archive import Archive
from ticker.ops.metrics import Metrics
from ticker.settings import Channel, Settings
from ticker.store import Audited, Change, EventType, HeadlineNote, Reason, Schedule, Store

_RETRIES = 8


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _ms_delta(value: timedelta) -> int:
    return int(value.total_seconds() * 1000)


def _too_many_pins(ch: Channel) -> TooManyPins:
    return TooManyPins(f"channel {ch.name!r} has {PIN_MAX} pinned items already; unpin one first")


def _stale(current: Item, base: frozenset[int]) -> Stale:
    asked = ", ".join(f"v{v}" for v in sorted(base))
    return Stale(
        f"item {current.uri!r} changed since {asked}: it is at v{current.version}"
        f" ({current.author}, {current.updated_at.isoformat()}); nothing was written",
        item=current.model_dump(mode="json"),
    )


def _stale_or_gone(stored: str, channel: str, uri: str, base: frozenset[int]) -> TickerError:
    """The commit found another version than the one read (its record, or '' if purged)."""
    if not stored:
        return NotFound(f"no item {uri!r} in channel {channel!r}")
    return _stale(Item.model_validate_json(stored), base)


def _field_error(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{field}: {message}", details=[{"field": field, "message": message}])


class Writer:
    """The state and the commit of the desk's actions (``desk.Desk`` puts them together)."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        metrics: Metrics | None = None,
        archive: Archive | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._metrics = metrics or Metrics()
        # Reads of the record (the version a change starts from): archive.py.
        self._archive = archive or Archive(store, settings)
        self._rewrites = AofRewrites(store, settings)

    def channel(self, name: str) -> Channel:
        return self._settings.known_channel(name)

    async def _commit(
        self,
        ch: Channel,
        item: Item,
        *,
        expected: int,
        event_type: EventType,
        reason: Reason | Literal[""] = "",
        idempotency: tuple[str, str] | None = None,
        claim: Schedule | Literal[""] = "",
        keep_state: bool = False,
        headline: HeadlineNote | None = None,
        notice: str | None = None,
        audited: Audited = "",
    ) -> tuple[str, str]:
        now = utcnow()
        alive = item.status is not Status.CANCELED
        # Every version written passes here (a kill or an expiry never takes a pin).
        if item.advisory and item.pinned and alive and reason != "expire":
            raise _field_error("pinned", "an advisory is never on the bar, so it cannot be pinned")
        # An item waiting for sign-off is in no embargo schedule: approval puts it there.
        waiting = (
            alive
            and item.status not in signoff.AWAITING
            and item.embargoed_until is not None
            and item.embargoed_until > now
        )
        change = Change(
            uri=item.uri,
            expected_version=expected,
            event_type=event_type,
            reason=reason,
            # A new version's id is its entry's (the script adds it); an event about the
            # version as it stands (expiry, embargo release) names that version's id.
            body=item.model_dump_json(exclude=None if keep_state else {"id"}),
            live_score=_ms(item.created_at) if item.visible_at(now) else None,
            expires_ms=_ms(item.expires_at) if alive and reason != "expire" else None,
            embargo_ms=_ms(item.embargoed_until) if waiting and item.embargoed_until else None,
            # The desk's queue: held, and waiting for (or refused) sign-off.
            held_ms=_ms(item.updated_at)
            if (item.status is Status.WITHHELD or item.status in signoff.AWAITING)
            and reason != "expire"
            else None,
            # A pin holds its slot until the item is killed or expires (held items too).
            pin=item.pinned and alive and reason != "expire",
            pin_max=PIN_MAX,
            idempotency=idempotency,
            idempotency_ttl_s=self._settings.idempotency_ttl_s,
            history_max_items=ch.history_max_items,
            live_max_items=ch.live_max_items,
            versions_ttl_ms=_ms_delta(ch.history_max_age),
            claim=claim,
            keep_state=keep_state,
            audited="kill" if reason == "kill" else audited,
            headline=headline,
            notice=notice,
        )
        status, stored, pushed_out = await self._store.items.commit(ch.name, change)
        if status == "ok":
            self._metrics.child(self._metrics.published, ch.name, event_type).inc()
            if pushed_out:
                self._metrics.child(self._metrics.published, ch.name, "remove").inc(pushed_out)
            if reason == "expire":
                lag = (now - item.expires_at).total_seconds()
                self._metrics.child(self._metrics.expiry_lag, ch.name).observe(max(0.0, lag))
        return status, stored

    async def _poster(self, channel: str, uri: str, role: str) -> str | None:
        """Who posted an item (its first version's author), for a contributor's change;
        ``None`` for other roles (not needed: nothing is read)."""
        if role != signoff.CONTRIBUTOR:
            return None
        versions = await self._archive.versions(channel, uri)
        return versions[0].author if versions else None
