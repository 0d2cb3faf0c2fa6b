"""The fleet: every ``ticker serve`` process sharing a Redis, whichever host it runs on.

Each process reports who it is and its readers per channel every ``fleet_report_s``; a
report lasts ``fleet_ttl_s`` (three intervals), so a process that died, even by SIGKILL,
drops out by itself. ``/stats`` and ``ticker stats`` add the reports up: one line per
process and the total, whichever process answers.

Deliberate choices:
- The answering process counts itself live, not from its last report: with ``--workers
  N`` a request reaches any worker, and each one then answers the same, current total
  for itself and at most one interval old for the others.
- Reports are a key per process with a TTL plus one index (store/fleet.py), all under the
  ``{fleet}`` hash tag: one Redis Cluster slot, and nothing lists keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ticker.domain.errors import StoreUnavailable
from ticker.ops import logs, tasks
from ticker.settings import Settings
from ticker.store import Store

log = logging.getLogger("ticker.fleet")

_report_warnings = logs.Every(60.0)


@dataclass(frozen=True, slots=True)
class Member:
    """One process of the fleet, as it last reported itself."""

    id: str
    host: str
    pid: int
    started_at: float  # seconds since the epoch, on the member's own clock
    readers: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.readers.values())

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> Member | None:
        try:
            data = json.loads(raw)
            readers = {str(k): int(v) for k, v in dict(data.get("readers", {})).items()}
            return cls(
                id=str(data["id"]),
                host=str(data["host"]),
                pid=int(data["pid"]),
                started_at=float(data["started_at"]),
                readers=readers,
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return None  # another version's record, or damaged: leave it out

    def view(self, now: float) -> dict[str, Any]:
        """As ``/stats`` shows it."""
        return {
            "id": self.id,
            "host": self.host,
            "pid": self.pid,
            "readers": self.total,
            "channels": self.readers,
            "uptime_s": round(max(0.0, now - self.started_at), 1),
        }


class Fleet:
    """This process's membership: reports in the background, answers for everyone."""

    def __init__(
        self, store: Store, settings: Settings, readers: Callable[[], dict[str, int]]
    ) -> None:
        self._store = store
        self._settings = settings
        self._readers = readers
        # Random, not host:pid: a pid is reused, and containers all run as pid 1.
        self.me = Member(secrets.token_hex(6), socket.gethostname(), os.getpid(), time.time())
        self._task: asyncio.Task[None] | None = None

    def _now(self) -> Member:
        return replace(self.me, readers=self._readers())

    def start(self) -> None:
        self._task = asyncio.create_task(
            self._run(), name="ticker-fleet", context=contextvars.Context()
        )

    async def report(self) -> None:
        ttl_ms = int(self._settings.fleet_ttl_s * 1000)
        await self._store.fleet.report(
            self.me.id, self._now().to_json(), now_ms=_ms(time.time()), ttl_ms=ttl_ms
        )

    async def _run(self) -> None:
        while True:
            try:
                await self.report()
            except StoreUnavailable as exc:
                held = _report_warnings.due()
                if held is not None:
                    log.warning("fleet report failed: %s (%d similar since)", exc, held)
            except Exception:
                # A bug must not end the reports (the process would leave the fleet).
                log.exception("fleet report failed")
            await asyncio.sleep(self._settings.fleet_report_s)

    async def members(self) -> list[Member]:
        """Every process that reported within the TTL, this one live; oldest first."""
        now = time.time()
        rows = await self._store.fleet.members(
            now_ms=_ms(now), ttl_ms=int(self._settings.fleet_ttl_s * 1000)
        )
        found = {self.me.id: self._now()}
        for raw in rows:
            member = Member.from_json(raw)
            if member is not None and member.id != self.me.id:
                found[member.id] = member
        return sorted(found.values(), key=lambda m: (m.started_at, m.id))

    async def close(self) -> None:
        """Stop reporting and leave at once (not after the TTL)."""
        await tasks.stop(self._task)
        self._task = None
        with contextlib.suppress(StoreUnavailable):  # the TTL removes us anyway
            await self._store.fleet.leave(self.me.id)


def _ms(seconds: float) -> int:
    return int(seconds * 1000)
