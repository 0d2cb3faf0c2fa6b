"""What "acknowledged" means for a write: applied on the primary (the default), or also on
N replicas (``WAIT``) and fsynced to the append-only files (``WAITAOF``). Pure rules;
store/client.py sends the commands, on the connection that made the write.

Deliberate choices:
- ``TICKER_ACK_FSYNC`` asks ``WAITAOF 1 N``: the primary's own AOF and N replicas' AOFs.
  With it, ``WAIT`` is not sent as well: a replica that fsynced the write has it.
- A shortfall is ``NotDurable`` (503 ``not_durable``), raised *after* the write was
  applied: the reply says it may be there, and a retry with the same Idempotency-Key
  (or of a kill, a hold, a purge) is answered only once the replicas confirm it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ticker.domain.errors import NotDurable

# Redis and Valkey have WAITAOF from 7.2 on.
WAITAOF_SINCE = "7.2"


@dataclass(frozen=True, slots=True)
class Ack:
    """What a write waits for before it is answered (``TICKER_ACK_*``)."""

    replicas: int = 0
    timeout_ms: int = 1000
    fsync: bool = False

    @property
    def wanted(self) -> bool:
        """False by default: a write is answered once the primary applied it."""
        return self.replicas > 0 or self.fsync

    def command(self) -> tuple[Any, ...]:
        if self.fsync:
            return ("WAITAOF", 1, self.replicas, self.timeout_ms)
        return ("WAIT", self.replicas, self.timeout_ms)

    def check(self, reply: Any) -> None:
        """``NotDurable`` unless ``reply`` (to ``command()``) shows enough copies."""
        if isinstance(reply, Exception):
            if self.fsync and "unknown command" in str(reply).lower():
                why = f"this Redis has no WAITAOF (TICKER_ACK_FSYNC needs {WAITAOF_SINCE}+)"
            elif self.fsync and "appendonly" in str(reply).lower():
                why = "this Redis has appendonly off (TICKER_ACK_FSYNC needs it on)"
            else:
                why = f"Redis did not confirm it ({type(reply).__name__})"
            raise NotDurable(f"the write may be applied, but {why}")
        if self.fsync:
            local, replicas = int(reply[0]), int(reply[1])
            if local < 1:
                self._short(
                    f"the primary's AOF fsync was not confirmed within {self.timeout_ms} ms"
                )
        else:
            replicas = int(reply)
        if replicas < self.replicas:
            self._short(
                f"{replicas} of {self.replicas} replicas confirmed it within {self.timeout_ms} ms"
            )

    @staticmethod
    def _short(what: str) -> None:
        raise NotDurable(
            f"the write may be applied, but only on the primary: {what}; retry it (with the "
            "same Idempotency-Key for a post)"
        )


def fsync_problem(info: dict[str, Any]) -> str | None:
    """What keeps a server (its ``INFO``) from ``WAITAOF 1``, or None.
    Valkey reports a ``redis_version`` of 7.2.4 for compatibility, so one rule fits both."""
    version = str(info.get("redis_version", "0"))
    parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    if parts < (7, 2):
        return (
            "TICKER_ACK_FSYNC=true needs WAITAOF, which Redis and Valkey have from"
            f" {WAITAOF_SINCE} on; this server is {version}: upgrade it, or unset"
            " TICKER_ACK_FSYNC"
        )
    if info.get("role") == "master" and str(info.get("aof_enabled", "0")) != "1":
        return (
            "TICKER_ACK_FSYNC=true needs the append-only file: set appendonly yes on the"
            " Redis server, or unset TICKER_ACK_FSYNC"
        )
    return None


# The default: a write is answered once the primary applied it.
APPLIED = Ack()
