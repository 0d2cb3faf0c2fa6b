"""Read a ticker channel's Redis stream with a consumer group. Copy this file; it needs only
``redis`` (redis-py >= 5). docs/streams.md is the contract it reads against.

    python reader.py --redis redis://localhost:6379/0 --channel en --group search --consumer c1

Each entry is delivered to one consumer of a group, and acknowledged (XACK) only after
the handler returned: a consumer that dies mid-batch leaves its entries pending, and any
consumer of the group takes them over (XAUTOCLAIM) once they have been idle ``min_idle_ms``.
So every entry is handled at least once; make the handler idempotent (an entry's ``id`` is
unique; ``uri`` + ``item["version"]`` + ``reason`` names an entry too: an embargo
release repeats its version with reason ``release``).

Deliberate choices:
- An entry of an unknown schema version (``v``) stops the reader (``UnknownSchema``), not
  acknowledged: skipping it would lose events for good (a kill never applied). It stays
  pending for an upgraded reader. An entry of a known version that does not decode is
  logged and acknowledged: no later attempt by this code can read it.
- A handler that raises leaves that entry pending (it is retried after ``min_idle_ms``);
  the rest of the batch goes on.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

SCHEMA_VERSIONS = frozenset({"1"})  # the ``v`` values this reader understands
log = logging.getLogger("ticker.reader")


class UnknownSchema(Exception):
    """An entry of a schema version this reader cannot read: stop and upgrade."""


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def on_air(item: Mapping[str, Any], now: datetime) -> bool:
    """On the ticker at ``now`` (docs/streams.md): a headline (an advisory never is),
    ``usable``, its embargo absent or past, and ``expires_at`` in the future. ``now``
    must be timezone-aware. Never an item that is ``withheld``, ``canceled``, or waiting
    for (``pending``) or refused (``rejected``) an editor's sign-off: those are the desk's,
    not the public's."""
    if item.get("kind", "headline") == "advisory":
        return False
    if item.get("status") != "usable" or not item.get("expires_at"):
        return False
    embargo = item.get("embargoed_until")
    if embargo and _time(embargo) > now:
        return False
    return _time(item["expires_at"]) > now


@dataclass(frozen=True, slots=True)
class Event:
    """One decoded stream entry."""

    id: str  # the stream entry ID (also the SSE ``id:``)
    type: str  # "item" | "remove"
    uri: str  # the item's stable identifier
    # for "remove": "kill" | "withhold" | "expire"; for "item": "release" (an embargo
    # released: the same version as before) or None
    reason: str | None
    item: dict[str, Any]  # the item JSON; ``id`` filled in from the entry ID when absent
    v: str  # schema version
    # for a "kill": the note readers were shown in its place, if any (the channel's
    # kill_notices); the item's own "notice" is the desk's record either way
    notice: str | None = None

    @property
    def headline(self) -> str | None:
        return self.item.get("headline")

    @property
    def version(self) -> int | None:
        return self.item.get("version")

    @property
    def status(self) -> str | None:
        return self.item.get("status")

    @property
    def embargoed_until(self) -> str | None:
        return self.item.get("embargoed_until")

    @property
    def kind(self) -> str | None:
        """``headline`` or ``advisory`` (a note for the desk and partners, never on air);
        ``headline`` for entries written before advisories, None for a purge's notice."""
        if self.item.get("purged"):
            return None
        return str(self.item.get("kind", "headline"))

    def on_air(self, now: datetime | None = None) -> bool:
        """An ``item`` event whose item is on the ticker at ``now`` (default: the clock)."""
        return self.type == "item" and on_air(self.item, now or datetime.now(UTC))


def stream_key(channel: str, prefix: str = "ticker") -> str:
    return f"{prefix}:{{{channel}}}:events"


def decode(entry_id: str, fields: Mapping[str, str]) -> Event | None:
    """An entry as an ``Event``; None (with a warning) when it does not decode.
    ``UnknownSchema`` for a ``v`` this reader does not know."""
    v = fields.get("v")
    if v not in SCHEMA_VERSIONS:
        known = ", ".join(sorted(SCHEMA_VERSIONS))
        raise UnknownSchema(
            f"entry {entry_id} has schema version v={v!r}; this reader reads v={known}. "
            "Stopped without acknowledging it: upgrade the reader (docs/streams.md)"
        )
    try:
        item = json.loads(fields["item"])
        if not isinstance(item, dict):
            raise ValueError("item is not a JSON object")
        item.setdefault("id", entry_id)  # item and kill entries leave the id to the entry ID
        reason, notice = fields.get("reason") or None, fields.get("notice") or None
        return Event(entry_id, fields["type"], fields["uri"], reason, item, v, notice)
    except (KeyError, ValueError) as exc:
        log.warning("skipping entry %s: %s", entry_id, exc)
        return None


Handler = Callable[[Event], None]
Rows = Sequence[tuple[str, Mapping[str, str] | None]]


class GroupReader:
    """One consumer of a consumer group on one stream (a sync redis-py client)."""

    def __init__(
        self,
        client: redis.Redis,
        key: str,
        group: str,
        consumer: str,
        *,
        start: str = "$",
        count: int = 100,
        block_ms: int = 5000,
        min_idle_ms: int = 60_000,
    ) -> None:
        # The client must answer str (decode_responses=True), and its socket_timeout
        # must outlast block_ms.
        self.client, self.key, self.group, self.consumer = client, key, group, consumer
        self.start, self.count = start, count
        self.block_ms, self.min_idle_ms = block_ms, min_idle_ms

    def ensure_group(self) -> None:
        """XGROUP CREATE ... MKSTREAM; a group that exists already is kept as it is."""
        try:
            self.client.xgroup_create(self.key, self.group, id=self.start, mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def claim(self) -> Rows:
        """Take over entries another consumer left pending longer than ``min_idle_ms``."""
        rows: list[tuple[str, Mapping[str, str] | None]] = []
        cursor = "0-0"
        while True:
            reply: Any = self.client.xautoclaim(
                self.key, self.group, self.consumer, self.min_idle_ms, cursor, count=self.count
            )
            cursor, claimed = reply[0], reply[1]
            rows += [(i, f) for i, f in claimed if i is not None]  # None: trimmed (Redis 6.2)
            if cursor == "0-0" or len(rows) >= self.count:
                return rows

    def read(self, *, block_ms: int | None = None) -> Rows:
        """New entries for this consumer (XREADGROUP ... >); they stay pending until acked."""
        block = self.block_ms if block_ms is None else block_ms
        reply: Any = self.client.xreadgroup(
            self.group, self.consumer, {self.key: ">"}, count=self.count, block=block or None
        )
        if not reply:
            return []
        # A list of [stream, entries] on RESP2, a dict on RESP3.
        return list(reply[0][1] if isinstance(reply, list) else next(iter(reply.values()))[0])

    def handle(self, rows: Rows, handler: Handler) -> int:
        """Decode, handle and XACK each entry; returns how many were acknowledged.
        An entry of an unknown ``v`` raises ``UnknownSchema``: it and the rest of the
        batch stay pending."""
        done = 0
        for entry_id, fields in rows:
            event = decode(entry_id, fields or {})
            if event is not None:
                try:
                    handler(event)
                except Exception:
                    log.exception("handler failed on %s; it stays pending", entry_id)
                    continue
            # Acked right after its handler: a crash mid-batch redelivers only the rest.
            self.client.xack(self.key, self.group, entry_id)
            done += 1
        return done

    def poll(self, handler: Handler) -> int:
        """One round: stale pending entries first, then new ones (blocking up to block_ms)."""
        claimed = self.claim()
        if claimed:
            return self.handle(claimed, handler)
        return self.handle(self.read(), handler)

    def run(self, handler: Handler, *, limit: int | None = None) -> None:
        """Poll until ``limit`` entries were acknowledged (forever when None)."""
        self.ensure_group()
        done = 0
        while limit is None or done < limit:
            try:
                done += self.poll(handler)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("Redis unavailable (%s); retrying in 1 s", exc)
                time.sleep(1)


def connect(url: str, *, block_ms: int = 5000) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=block_ms / 1000 + 5,
        socket_connect_timeout=5,
        health_check_interval=15,
    )


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Print a ticker channel's events, one JSON line each.")
    p.add_argument(
        "--redis", default=os.environ.get("TICKER_REDIS_URL", "redis://localhost:6379/0")
    )
    p.add_argument("--channel", default="en")
    p.add_argument("--prefix", default="ticker", help="TICKER_KEY_PREFIX of the service")
    p.add_argument("--group", required=True)
    p.add_argument("--consumer", default=f"{socket.gethostname()}-{os.getpid()}")
    p.add_argument("--start", default="$", help="where a new group starts: $ (new) or 0 (all)")
    p.add_argument("--count", type=int, default=100, help="entries per read")
    p.add_argument("--block-ms", type=int, default=5000)
    p.add_argument("--min-idle-ms", type=int, default=60_000, help="claim entries idle this long")
    p.add_argument("--limit", type=int, default=None, help="exit after this many entries")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    def show(e: Event) -> None:
        out: dict[str, Any] = {"id": e.id, "type": e.type, "uri": e.uri, "reason": e.reason}
        out |= {"headline": e.headline, "version": e.version, "status": e.status}
        out["embargoed_until"] = e.embargoed_until
        out["notice"] = e.notice
        out["kind"] = e.kind
        print(json.dumps(out, ensure_ascii=False), flush=True)

    client = connect(args.redis, block_ms=args.block_ms)
    reader = GroupReader(
        client,
        stream_key(args.channel, args.prefix),
        args.group,
        args.consumer,
        start=args.start,
        count=args.count,
        block_ms=args.block_ms,
        min_idle_ms=args.min_idle_ms,
    )
    try:
        reader.run(show, limit=args.limit)
    except KeyboardInterrupt:
        pass
    except UnknownSchema as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(3)  # as the Node.js reader: 3, a schema this reader cannot read
    finally:
        client.close()


if __name__ == "__main__":
    main()
