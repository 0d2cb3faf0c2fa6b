"""The sweeper's actions (retention.py): an item taken off the ticker when its time is
up, and an embargoed item published when its time comes."""

from __future__ import annotations

from typing import Literal

from ticker.domain.errors import NotFound
from ticker.domain.models import Status, utcnow
from ticker.newsroom.commit import _RETRIES, Writer
from ticker.store import EventType, Reason, Schedule


class Due(Writer):
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
