"""Purge down to the disk: after a purge, the text leaves Redis's append-only file.

A purge deletes the text from Redis's memory, but the AOF still holds the commands that
wrote it until Redis rewrites the file from memory (``BGREWRITEAOF``). Every purge counts
one rewrite as wanted (``after_purge``); each process's sweeper asks for it when it is due
(``step``), and ``/stats`` shows where it stands (``status``).

Deliberate choices (read before "fixing"):
- At most one rewrite per ``TICKER_PURGE_REWRITE_S`` across every process: a lock key
  taken with ``SET NX PX`` before asking. Purges meanwhile wait for the lock to end; the
  purge reply says when the rewrite is due.
- A rewrite already running was forked before the purge, so its file may still hold the
  text: while one runs (or is scheduled), the request waits and is asked after it.
- ``wanted`` is a count, and a rewrite takes off only what it covered: a purge that lands
  while a process asks is never lost (at worst it gets one more rewrite).
- AOF off: nothing is asked. Read from ``INFO persistence`` (``aof_enabled``), since
  managed Redis services often refuse ``CONFIG GET``. Where INFO is refused too, the
  rewrite is asked all the same, and a refusal is logged once per interval.
- Only the primary is asked (each primary on a cluster). Replicas, RDB snapshots and
  backups are the operator's (docs/reliability.md, "Purge and the disk").
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any, Literal

from ticker.settings import Settings
from ticker.store import Store

log = logging.getLogger("ticker.aof")

AofState = Literal["on", "off", "unknown"]


def _iso(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def aof_state(info: list[dict[str, Any]] | None) -> AofState:
    if info is None:
        return "unknown"
    return "on" if any(int(i.get("aof_enabled", 0)) for i in info) else "off"


def rewriting(info: list[dict[str, Any]] | None) -> bool:
    """A rewrite runs, or waits for a BGSAVE to end, on some primary."""
    return any(
        int(i.get("aof_rewrite_in_progress", 0)) or int(i.get("aof_rewrite_scheduled", 0))
        for i in info or []
    )


class AofRewrites:
    """The rewrite schedule, kept in Redis: any number of these, in any process, agree."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._interval_ms = int(settings.purge_rewrite_s * 1000)

    async def after_purge(self) -> dict[str, Any]:
        """Want one more rewrite; the purge reply's ``disk``: the AOF's state and when the
        rewrite is due (``None``: no AOF, nothing to rewrite)."""
        state = aof_state(await self._store.aof.info())
        if state == "off":
            return {"aof": state, "rewrite_due_at": None}
        due = await self._store.aof.request(int(time.time() * 1000))
        return {"aof": state, "rewrite_due_at": _iso(due)}

    async def step(self) -> bool:
        """Ask for the rewrite if one is wanted, its interval's lock is free and no rewrite
        runs (the sweeper calls this every round). True when it was asked."""
        wanted, lock_left, _ = await self._store.aof.state()
        if wanted <= 0 or lock_left > 0:
            return False
        info = await self._store.aof.info()
        if aof_state(info) == "off":
            await self._store.aof.covered(wanted, asked_ms=None)  # nothing on disk
            return False
        if rewriting(info):
            return False  # forked before the purge, maybe: ask again after it
        now_ms = int(time.time() * 1000)
        if not await self._store.aof.lock(now_ms, self._interval_ms):
            return False  # another process asks
        answer = await self._store.aof.bgrewriteaof()
        if answer == "busy":
            await self._store.aof.unlock()  # one began meanwhile: next round
            return False
        if answer != "started":
            # The lock stays: one warning (and one retry) per interval.
            log.warning(
                "Redis refused BGREWRITEAOF (%s): purged text stays in its append-only file "
                "until it is rewritten; run BGREWRITEAOF on the server (docs/reliability.md)",
                answer,
            )
            return False
        await self._store.aof.covered(wanted, asked_ms=now_ms)
        log.info("asked Redis to rewrite its append-only file (%d purges)", wanted)
        return True

    async def status(self) -> dict[str, Any]:
        """For ``/stats``: the AOF, the last rewrite, and what waits."""
        info = await self._store.aof.info()
        wanted, lock_left, asked = await self._store.aof.state()
        known = info or []
        failed = [i for i in known if i.get("aof_last_bgrewrite_status") not in (None, "ok")]
        took = max((int(i.get("aof_last_rewrite_time_sec", -1)) for i in known), default=-1)
        state = aof_state(info)
        due = int(time.time() * 1000) + lock_left if wanted > 0 and state != "off" else None
        return {
            "aof": state,
            "rewrite_in_progress": rewriting(info),
            "last_rewrite_status": None if not known else "err" if failed else "ok",
            "last_rewrite_duration_s": took if took >= 0 else None,  # -1: none yet
            "rewrite_asked_at": _iso(asked),
            "purges_waiting": max(0, wanted),
            "rewrite_due_at": _iso(due),
        }
