"""Killing: an item cancelled for good, with an optional notice for readers."""

from __future__ import annotations

from ticker.domain.errors import Conflict
from ticker.domain.models import Item, Status, utcnow
from ticker.domain.notices import check_rekill, public_notice
from ticker.newsroom import signoff
from ticker.newsroom.commit import Writer, _stale, _stale_or_gone

_KILL_RETRIES = 64


class Killing(Writer):
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
