"""Retention: expiry of single items, embargo release, the history age rule, the end
of an item's data (its record, versions and idempotency reply go with its last entry), and
the AOF rewrite a purge wants (aof.py).

Every ticker process runs one ``Sweeper``. The schedules live in Redis (``expiry`` and
``embargo`` sorted sets), so a restart loses nothing, and each due item is claimed
atomically inside the commit script, so several processes never write an expiry twice.
The sweeper runs on its own clock, so expiry works when nobody publishes for hours.
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import timedelta

from ticker.domain.errors import StoreUnavailable
from ticker.domain.models import utcnow
from ticker.newsroom.aof import AofRewrites
from ticker.newsroom.desk import Desk
from ticker.ops import logs, tasks
from ticker.settings import Settings
from ticker.store import Store

log = logging.getLogger("ticker.retention")

# One outage warning per process per 10 s: the sweeper tries twice a second.
_outage_warnings = logs.Every(10.0)


def min_id(max_age: timedelta) -> str:
    """The oldest stream ID the age rule keeps."""
    return f"{int((utcnow() - max_age).timestamp() * 1000)}-0"


class Sweeper:
    def __init__(self, store: Store, desk: Desk, settings: Settings) -> None:
        self._store = store
        self._desk = desk
        self._settings = settings
        self.rewrites = AofRewrites(store, settings)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ticker-sweeper")

    async def close(self) -> None:
        await tasks.stop(self._task)

    async def _run(self) -> None:
        interval = self._settings.sweep_interval_s
        rounds = 0
        while True:
            # A little jitter keeps several processes from sweeping in lockstep.
            await asyncio.sleep(interval * random.uniform(0.8, 1.2))
            try:
                await self.sweep(trim=rounds % 20 == 0)
            except StoreUnavailable as exc:
                held = _outage_warnings.due()
                if held is not None:
                    log.warning("sweeper: %s (%d similar warnings in the last 10s)", exc, held)
            rounds += 1

    async def sweep(self, *, trim: bool = True) -> None:
        """One pass over every channel: expire, release, and (now and then) trim; then the
        AOF rewrite, when a purge wants one and it is due."""
        now_ms = int(utcnow().timestamp() * 1000)
        for ch in self._settings.channels:
            for uri in await self._store.items.due(ch.name, "embargo", now_ms):
                await self._desk.release(ch.name, uri)
            for uri in await self._store.items.due(ch.name, "expiry", now_ms):
                await self._desk.expire(ch.name, uri)
            if trim:
                await self._store.items.trim_before(ch.name, min_id(ch.history_max_age))
                # An item whose whole history is gone (by age or by count) leaves too.
                await self._desk.prune(ch.name)
        await self.rewrites.step()
