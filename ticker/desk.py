"""The editorial actions: post, correct, hold, release, kill, purge, approve, reject;
expiry and embargo release for the sweeper. Reads of the record are in archive.py; the
sign-off rules (who waits, who may approve or change what) in signoff.py.

Each action builds the item's next version in Python and commits it through one Lua
script (``store.items.commit``) that checks the version it started from, so two editors
correcting the same item at once never lose an edit: the loser re-reads and retries.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
from datetime import datetime, timedelta
from typing import Any, Literal

from ticker import dupes, signoff
from ticker.aof import AofRewrites
from ticker.archive import Archive
from ticker.duration import format_duration
from ticker.errors import (
    Conflict,
    Expired,
    IdempotencyMismatch,
    InvalidRequest,
    Killed,
    NotFound,
    Stale,
    TickerError,
    TooManyPins,
)
from ticker.metrics import Metrics
from ticker.models import PIN_MAX, Item, ItemIn, ItemPatch, Kind, Status, utcnow
from ticker.notices import check_rekill, marked, public_notice
from ticker.settings import Channel, Settings
from ticker.store import Audited, Change, EventType, HeadlineNote, Reason, Schedule, Store
from ticker.when import When

_RETRIES = 8
_KILL_RETRIES = 64


def new_uri(now: datetime) -> str:
    """Time-ordered, URL-safe, unguessable: 6 bytes of milliseconds + 5 random bytes."""
    raw = int(now.timestamp() * 1000).to_bytes(6, "big") + os.urandom(5)
    return base64.b32encode(raw).decode().lower().rstrip("=")


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _ms_delta(value: timedelta) -> int:
    return int(value.total_seconds() * 1000)


def _idempotency(author: str, key: str, data: ItemIn) -> tuple[str, str]:
    """(the key's scope, per token; the request's fingerprint). ``force`` is not part of
    the request's item: a retry with it replays the first reply."""
    scope = hashlib.sha256(f"{author}\0{key}".encode()).hexdigest()[:40]
    # ``force`` is not part of the request (a retry may add it), and a headline's leaves
    # ``kind`` out, as before kinds existed: a retry that spans an upgrade still matches.
    skip = {"force"} if data.kind is Kind.ADVISORY else {"force", "kind"}
    return scope, hashlib.sha256(data.model_dump_json(exclude=skip).encode()).hexdigest()


def _too_many_pins(ch: Channel) -> TooManyPins:
    return TooManyPins(f"channel {ch.name!r} has {PIN_MAX} pinned items already; unpin one first")


# What a change may leave as it was and still change nothing (the bookkeeping of a version).
_BOOKKEEPING = frozenset({"id", "version", "updated_at", "author"})


def _same(item: Item, current: Item) -> bool:
    """A change that changes nothing: every field but the bookkeeping is as it was."""
    keep = set(_BOOKKEEPING)
    return item.model_dump(exclude=keep) == current.model_dump(exclude=keep)


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


class Desk:
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
        ch = self._settings.channel(name)
        if ch is None:
            raise NotFound(f"unknown channel {name!r}")
        return ch

    # -- rules -------------------------------------------------------------------------

    def _expiry(
        self,
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
                    f"must be between 1s and {format_duration(limit)}"
                    " (the channel's history_max_age)",
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

    def _embargo(
        self, ch: Channel, now: datetime, *, until: datetime | None, embargo: When | None
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

    # -- actions -----------------------------------------------------------------------

    async def post(
        self,
        channel: str,
        data: ItemIn,
        *,
        author: str,
        idempotency_key: str | None = None,
        role: str = "editor",
    ) -> tuple[Item, bool]:
        """Publish a new item (``pending`` when it waits for sign-off: ``role``, the
        channel's ``sign_off``). Returns (item, created); a replayed key returns the first."""
        ch = self.channel(channel)
        initial = signoff.post_status(role, ch, data.status)
        now = utcnow()
        embargo = self._embargo(ch, now, until=data.embargoed_until, embargo=data.embargo)
        start = embargo or now
        expires = self._expiry(
            ch, now, start=start, ttl=data.ttl, expires_at=data.expires_at, default=None
        )
        if embargo is not None and expires <= embargo:
            raise _field_error("expires_at", "must be after embargoed_until")
        idempotency = None
        if idempotency_key is not None:
            idempotency = _idempotency(author, idempotency_key, data)
        note = dupes.note(ch, data.headline, now, force=data.force)
        for _ in range(_RETRIES):
            item = Item(
                uri=new_uri(now),
                channel=ch.name,
                version=1,
                headline=data.headline,
                source=data.source,
                urgency=data.urgency,
                language=data.language or ch.language,
                regions=data.regions,
                categories=data.categories,
                link=data.link,
                status=initial,
                created_at=now,
                updated_at=now,
                expires_at=expires,
                embargoed_until=embargo,
                pinned=data.pinned,
                story=data.story,
                author=author,
                kind=data.kind,
            )
            status, stored = await self._commit(
                ch, item, expected=0, event_type="item", idempotency=idempotency, headline=note
            )
            if status == "duplicate" and note is not None:
                other = Item.model_validate_json(stored)
                if dupes.blocks(other, data.headline):
                    raise dupes.refusal(other)
                # Killed, or corrected to other words since: again, past that one only.
                note = dataclasses.replace(note, ignore=other.uri)
                continue
            if status == "too_many_pins":
                raise _too_many_pins(ch)
            if status == "ok":
                posted = Item.model_validate_json(stored)
                if posted.story:
                    # After the commit, not in it: the link is an index, and an item
                    # whose link failed is still an item (the reply says 503; a retry
                    # with the Idempotency-Key returns it).
                    await self._store.items.link_story(
                        ch.name, posted.story, posted.uri, ttl_ms=_ms_delta(ch.history_max_age)
                    )
                return posted, True
            if status == "dup":
                fingerprint, _, first = stored.partition("\n")
                if idempotency and fingerprint != idempotency[1]:
                    raise IdempotencyMismatch(
                        "this Idempotency-Key was already used with a different request"
                    )
                replayed = Item.model_validate_json(first)
                if replayed.story:  # the first call's link may have failed
                    await self._store.items.link_story(
                        ch.name, replayed.story, replayed.uri, ttl_ms=_ms_delta(ch.history_max_age)
                    )
                return replayed, False
        raise Conflict("could not allocate a new item uri")  # pragma: no cover

    async def replay(
        self, channel: str, data: ItemIn, *, author: str, idempotency_key: str
    ) -> Item | None:
        """The first reply to this Idempotency-Key and request, if there is one (a read)."""
        self.channel(channel)
        scope, fingerprint = _idempotency(author, idempotency_key, data)
        stored = await self._store.items.idempotent_reply(channel, scope)
        if stored is None:
            return None
        first_fingerprint, _, first = stored.partition("\n")
        if first_fingerprint != fingerprint:
            return None
        await self._store.settle(channel)  # the first reply may have been 503 not_durable
        return Item.model_validate_json(first)

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
        embargo = self._moved_embargo(ch, current, patch, changes, now)
        waiting = embargo is not None and embargo > now
        # A new time on the ticker counts from when the item goes on air.
        start = embargo if waiting and embargo is not None else now
        expires = self._expiry(
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

    def _moved_embargo(
        self, ch: Channel, current: Item, patch: ItemPatch, changes: dict[str, Any], now: datetime
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
                f"an embargo can only be set or moved while the item waits for it; this one"
                f" {state}",
            )
        return self._embargo(ch, now, until=patch.embargoed_until, embargo=patch.embargo)

    async def kill(
        self,
        channel: str,
        uri: str,
        *,
        author: str,
        base: frozenset[int] | None = None,
        notice: str | None = None,
        role: str = "editor",
    ) -> tuple[Item, bool]:
        """Cancel an item for good. Returns (the item, changed): killing a killed item
        changes nothing, whatever version it was asked of (the kill holds either way).
        ``notice``: a note for readers (notices.py says when they get it). A contributor
        withdraws its own items that wait (signoff.check_change)."""
        ch = self.channel(channel)
        poster = await self._poster(channel, uri, role)
        # A kill must not lose to corrections: each one that wins bumps the version once,
        # so n editors correcting at once can beat n tries (8 did, under load).
        for _ in range(_KILL_RETRIES):
            current = await self._archive.get(channel, uri)
            signoff.check_change(by=author, role=role, item=current, poster=poster, kill=True)
            check_rekill(current, notice)
            if current.status is Status.CANCELED:
                # Perhaps a retry after 503 not_durable: answered once the kill is durable.
                await self._store.settle(ch.name)
                return current, False
            if base is not None and current.version not in base:
                raise _stale(current, base)
            now = utcnow()
            item = current.model_copy(
                update={
                    "version": current.version + 1,
                    "status": Status.CANCELED,
                    "updated_at": now,
                    "author": author,
                    "notice": notice,
                }
            )
            status, stored = await self._commit(
                ch,
                item,
                expected=current.version,
                event_type="remove",
                reason="kill",
                notice=public_notice(ch, current, notice, now),
            )
            if status == "ok":
                return Item.model_validate_json(stored), True
            if base is not None:
                raise _stale_or_gone(stored, channel, uri, base)
        raise Conflict(f"item {uri!r} is being changed by someone else; try again")

    async def _poster(self, channel: str, uri: str, role: str) -> str | None:
        """Who posted an item (its first version's author), for a contributor's change;
        ``None`` for other roles (not needed: nothing is read)."""
        if role != signoff.CONTRIBUTOR:
            return None
        versions = await self._archive.versions(channel, uri)
        return versions[0].author if versions else None

    async def decide(
        self,
        channel: str,
        uri: str,
        decision: signoff.Decision,
        *,
        by: str,
        role: str,
        note: str | None = None,
        base: frozenset[int] | None = None,
    ) -> tuple[Item, bool]:
        """Approve (on air now, or at its embargo) or reject (with ``note``) an item that
        waits for sign-off. Returns (the item, changed): the same decision again changes
        nothing. ``base``: as for ``correct``."""
        ch = self.channel(channel)
        for _ in range(_RETRIES):
            current = await self._archive.get(channel, uri)
            writers = {v.author for v in await self._archive.versions(channel, uri)}
            now = utcnow()
            if not signoff.check_decision(
                decision,
                by=by,
                role=role,
                item=current,
                writers=writers | {current.author},
                ch=ch,
                note=note,
                expired=current.expires_at <= now,
            ):
                await self._store.settle(ch.name)  # perhaps a retry after 503 not_durable
                return current, False
            if base is not None and current.version not in base:
                raise _stale(current, base)
            update: dict[str, Any] = {"version": current.version + 1, "updated_at": now}
            if decision == "approve":
                update.update(status=Status.USABLE, approved_by=by)
            else:
                update.update(status=Status.REJECTED, rejected_by=by, rejection_note=note)
            status, stored = await self._commit(
                ch,
                current.model_copy(update=update),
                expected=current.version,
                event_type="item",
                audited=decision,
            )
            if status == "too_many_pins":  # pragma: no cover - a pending pin holds its slot
                raise _too_many_pins(ch)
            if status == "ok":
                decided = "approved" if decision == "approve" else "rejected"
                self._metrics.child(self._metrics.signoffs, ch.name, decided).inc()
                return Item.model_validate_json(stored), True
            if base is not None:
                raise _stale_or_gone(stored, channel, uri, base)
        raise Conflict(f"item {uri!r} is being changed by someone else; try again")

    # -- the sweeper's actions (retention.py) ----------------------------------------

    async def expire(self, channel: str, uri: str) -> bool:
        """Take an item whose time is up off the ticker: one ``remove`` (expire) entry."""
        return await self._due(channel, uri, "expiry")

    async def release(self, channel: str, uri: str) -> bool:
        """Publish an embargoed item when its time comes, as a normal ``item`` event."""
        return await self._due(channel, uri, "embargo")

    async def _due(self, channel: str, uri: str, schedule: Schedule) -> bool:
        """Act on a due expiry or embargo. The claim is taken inside the commit script, so
        with many processes sweeping each is written once; a correction that moved the
        time wins (the version check), and the loser re-reads."""
        ch = self.channel(channel)
        for _ in range(_RETRIES):
            try:
                current = await self._archive.get(channel, uri)
            except NotFound:
                return False
            now = utcnow()
            event_type: EventType = "item"
            reason: Reason | Literal[""] = ""
            if schedule == "expiry":
                if current.expires_at > now or current.status is Status.CANCELED:
                    return False
                event_type, reason = "remove", "expire"
            elif current.embargoed_until is None or current.embargoed_until > now:
                return False
            else:
                reason = "release"  # the same version as the post: consumers key on this
            status, _ = await self._commit(
                ch,
                current,
                expected=current.version,
                event_type=event_type,
                reason=reason,
                claim=schedule,
                keep_state=True,
            )
            if status != "conflict":
                return status == "ok"
        return False

    # -- purge, and the end of an item's data -------------------------------------------

    async def purge(
        self, channel: str, uri: str, *, reason: str, author: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """A legal takedown: every text of the item leaves Redis; an audit record without
        text stays. Purging a purged item answers the same and writes nothing to the
        channel. Returns (the audit record, ``disk``: when the text leaves the AOF; every
        purge, a repeated one too, makes sure a rewrite is due, see aof.py)."""
        ch = self.channel(channel)
        audit = {
            "uri": uri,
            "purged_by": author,
            "purged_at": utcnow().isoformat(),
            "reason": reason,
        }
        status, record = await self._store.items.purge(
            channel, uri, audit=audit, history_max_items=ch.history_max_items
        )
        if status == "unknown":
            raise NotFound(f"no item {uri!r} in channel {channel!r}")
        if status == "ok":
            self._metrics.child(self._metrics.published, ch.name, "remove").inc()
        return record or audit, await self._rewrites.after_purge()

    async def prune(self, channel: str) -> int:
        """Forget the items whose whole history has aged out (the sweeper's last step)."""
        return await self._store.items.prune(channel)
