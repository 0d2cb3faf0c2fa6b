"""Posting: a new item (its first version), and the first reply to an Idempotency-Key."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
from datetime import datetime

from ticker.domain.errors import Conflict, IdempotencyMismatch
from ticker.domain.models import Item, ItemIn, Kind, utcnow
from ticker.newsroom import dupes, signoff
from ticker.newsroom.commit import _RETRIES, Writer, _field_error, _ms_delta, _too_many_pins
from ticker.newsroom.times import embargo_time, expiry


def new_uri(now: datetime) -> str:
    """Time-ordered, URL-safe, unguessable: 6 bytes of milliseconds + 5 random bytes."""
    raw = int(now.timestamp() * 1000).to_bytes(6, "big") + os.urandom(5)
    return base64.b32encode(raw).decode().lower().rstrip("=")


def _idempotency(author: str, key: str, data: ItemIn) -> tuple[str, str]:
    """(the key's scope, per token; the request's fingerprint). ``force`` is not part of
    the request's item: a retry with it replays the first reply."""
    scope = hashlib.sha256(f"{author}\0{key}".encode()).hexdigest()[:40]
    # ``force`` is not part of the request (a retry may add it), and a headline's leaves
    # ``kind`` out, as before kinds existed: a retry that spans an upgrade still matches.
    skip = {"force"} if data.kind is Kind.ADVISORY else {"force", "kind"}
    return scope, hashlib.sha256(data.model_dump_json(exclude=skip).encode()).hexdigest()


class Posting(Writer):
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
        embargo = embargo_time(ch, now, until=data.embargoed_until, embargo=data.embargo)
        start = embargo or now
        expires = expiry(
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
