"""Signing off: an editor's or a chief's approval or rejection of an item that waits
(the rules of who may decide what are in signoff.py)."""

from __future__ import annotations

from typing import Any

from ticker.domain.errors import Conflict
from ticker.domain.models import Item, Status, utcnow
from ticker.newsroom import signoff
from ticker.newsroom.commit import _RETRIES, Writer, _stale, _stale_or_gone, _too_many_pins


class SigningOff(Writer):
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
