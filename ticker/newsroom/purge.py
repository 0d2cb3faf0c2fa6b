"""The end of an item's data: a purge (a legal takedown), and the sweeper's prune of the
items whose whole history has aged out."""

from __future__ import annotations

from typing import Any

from ticker.domain.errors import NotFound
from ticker.domain.models import utcnow
from ticker.newsroom.commit import Writer


class Purging(Writer):
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
