"""The only code that speaks Redis. ``Store`` is one process's handle, its parts plain
attributes, one per aggregate:

    keys.py      key names and the documented key layout
    client.py    the connection: call (error mapping), run (scripts), durable writes
    scripts.py   lua/*.lua loaded by name, with their declared KEYS and ARGV
    change.py    what a write says (Change, HeadlineNote)
    items.py     store.items: commit, purge, prune, and the items' reads
    tail.py      store.stream: the stream's reads, blocking tails
    tokens.py    store.tokens: token records, digests, write rate
    fleet.py     store.fleet: the processes' reports
    aof.py       store.aof: AOF rewrites after purges
    redisconn.py the clients, from TICKER_REDIS_URL
"""

from __future__ import annotations

from typing import Any

from ticker.domain.ack import APPLIED, Ack
from ticker.store.aof import Aof
from ticker.store.change import (
    AUDIT_MAX_ITEMS,
    SCHEMA_VERSION,
    Audited,
    Change,
    EventType,
    HeadlineNote,
    Reason,
    Schedule,
)
from ticker.store.client import Client
from ticker.store.fleet import Fleet
from ticker.store.items import Items
from ticker.store.keys import Keys, channel_keys
from ticker.store.tail import Entry, Stream, Tail
from ticker.store.tokens import Tokens

__all__ = [
    "AUDIT_MAX_ITEMS",
    "SCHEMA_VERSION",
    "Audited",
    "Change",
    "Entry",
    "EventType",
    "HeadlineNote",
    "Keys",
    "Reason",
    "Schedule",
    "Store",
    "Tail",
]


class Store:
    """Typed access to ticker's keys; one per process, shared by every request."""

    def __init__(
        self, url: str, *, prefix: str, max_connections: int = 64, ack: Ack = APPLIED
    ) -> None:
        self.prefix = prefix
        self.client = Client(url, max_connections=max_connections, ack=ack)
        self.items = Items(self.client, prefix)
        self.stream = Stream(self.client, prefix)
        self.tokens = Tokens(self.client, prefix)
        self.fleet = Fleet(self.client, prefix)
        self.aof = Aof(self.client, prefix)

    @property
    def ack(self) -> Ack:
        return self.client.ack

    @property
    def redis(self) -> Any:
        return self.client.redis

    def keys(self, channel: str) -> Keys:
        return channel_keys(self.prefix, channel)

    async def ping(self) -> None:
        await self.client.ping()

    async def ack_problem(self) -> str | None:
        return await self.client.ack_problem()

    async def settle(self, channel: str) -> None:
        """Wait until what the primary has now meets ``self.ack``: for an answer that
        writes nothing, so rests on an earlier write."""
        await self.client.settle(self.keys(channel).ack)

    async def close(self) -> None:
        await self.client.close()
