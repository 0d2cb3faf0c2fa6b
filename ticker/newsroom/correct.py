"""Correcting: a new version of an item (text, attribution, expiry, embargo, or hold and
release through ``status``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ticker.domain.errors import Conflict, Expired, InvalidRequest, Killed
from ticker.domain.models import Item, ItemPatch, Status, utcnow
from ticker.domain.notices import marked
from ticker.newsroom import signoff
from ticker.newsroom.commit import (
    _RETRIES,
    Writer,
    _field_error,
    _stale,
    _stale_or_gone,
    _too_many_pins,
)
from ticker.newsroom.times import expiry, moved_embargo
from ticker.settings import Channel
from ticker.store import EventType, Reason

# What a change may leave as it was and still change nothing (the bookkeeping of a version).
_BOOKKEEPING = frozenset({"id", "version", "updated_at", "author"})


def _same(item: Item, current: Item) -> bool:
    """A change that changes nothing: every field but the bookkeeping is as it was."""
    keep = set(_BOOKKEEPING)
    return item.model_dump(exclude=keep) == current.model_dump(exclude=keep)


class Correcting(Writer):
    async def correct(
        self,
        channel: str,
        uri: str,
        patch: ItemPatch,
        *,
        author: str,
        base: frozenset[int] | None = None,
        role: str = "editor",
    ) -> tuple[Item, bool]:
        """A new version: text, attribution, expiry, embargo, or hold/release through
        ``status``. Returns (the item, changed): a change that changes nothing writes
        nothing. ``base``: the versions the change may be made from (``If-Match``,
        ``base_version``); a newer one is ``Stale``, without a retry. ``role``: what
        the author may change (signoff.check_change)."""
        ch = self.channel(channel)
        changes = patch.model_dump(exclude_unset=True, exclude={"base_version", "notice"})
        if "notice" in patch.model_fields_set:
            if patch.notice is None:
                raise _field_error("notice", 'may not be null (leave it out, or send "corrected")')
            if not changes:
                raise _field_error("notice", "marks a correction: send the fields it changes too")
        if not changes:
            raise InvalidRequest("nothing to change: send at least one field")
        for field in ("headline", "urgency", "regions", "categories", "status", "pinned"):
            if field in changes and changes[field] is None:
                raise _field_error(field, "may not be null")
        if "embargo" in changes and changes["embargo"] is None:
            raise _field_error("embargo", 'may not be null (send "embargoed_until": null to lift)')
        poster = await self._poster(channel, uri, role)
        for _ in range(_RETRIES):
            current = await self._archive.get(channel, uri)
            signoff.check_change(
                by=author,
                role=role,
                item=current,
                poster=poster,
                kill=False,
                changes_status="status" in changes,
            )
            now = utcnow()
            if current.status is Status.CANCELED:
                raise Killed(f"item {uri!r} was killed and can no longer change")
            if current.expires_at <= now:
                raise Expired(f"item {uri!r} has expired and can no longer change")
            item = self._next_version(ch, current, patch, changes, now, author)
            if _same(item, current):
                # Perhaps a retry after 503 not_durable: answered once what it rests on
                # is durable (``TICKER_ACK_*``).
                await self._store.settle(ch.name)
                return current, False
            # After the test above: a mark alone is no change (it marks the text it changes).
            item = marked(item, patch.notice, now)
            if base is not None and current.version not in base:
                raise _stale(current, base)
            was_visible = current.visible_at(now)
            event_type: EventType = "item"
            reason: Reason | Literal[""] = ""
            if was_visible and item.status is Status.WITHHELD:
                event_type, reason = "remove", "withhold"
            status, stored = await self._commit(
                ch, item, expected=current.version, event_type=event_type, reason=reason
            )
            if status == "too_many_pins":
                raise _too_many_pins(ch)
            if status == "ok":
                return Item.model_validate_json(stored), True
            if base is not None:  # moved on since it was read: no retry over a precondition
                raise _stale_or_gone(stored, channel, uri, base)
        raise Conflict(f"item {uri!r} is being changed by someone else; try again")

    def _next_version(
        self,
        ch: Channel,
        current: Item,
        patch: ItemPatch,
        changes: dict[str, Any],
        now: datetime,
        author: str,
    ) -> Item:
        """The version a correction makes (422 naming the field), not yet written."""
        embargo = moved_embargo(ch, current, patch, changes, now)
        waiting = embargo is not None and embargo > now
        # A new time on the ticker counts from when the item goes on air.
        start = embargo if waiting and embargo is not None else now
        expires = expiry(
            ch,
            now,
            start=start,
            ttl=patch.ttl,
            expires_at=patch.expires_at,
            default=current.expires_at,
        )
        if waiting and embargo is not None and expires <= embargo:
            named = [f for f in ("ttl", "expires_at", "embargo", "embargoed_until") if f in changes]
            raise _field_error(
                named[0],
                f"the embargo ({embargo.isoformat()}) must end before the item expires"
                f" ({expires.isoformat()}); move expires_at or ttl too",
            )
        skip = ("ttl", "expires_at", "embargo", "embargoed_until")
        update = {k: v for k, v in changes.items() if k not in skip}
        update.update(
            version=current.version + 1,
            updated_at=now,
            expires_at=expires,
            embargoed_until=embargo,
            author=author,
        )
        if "status" in update:
            update["status"] = Status(update["status"])
        return current.model_copy(update=update)
