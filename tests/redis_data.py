"""The test's Redis as ticker left it: streams, entries written straight in, and keys
holding a given text."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import redis

from ticker.settings import Settings


def rdb(settings: Settings) -> Any:  # redis-py's reply types are too loose to narrow here
    """A plain (bytes) client of the test's Redis."""
    assert settings.redis_url is not None
    return redis.Redis.from_url(settings.redis_url.get_secret_value())


def stream_len(settings: Settings, channel: str = "en") -> int:
    """How many entries a channel's event stream holds (what has been written to it)."""
    client = rdb(settings)
    try:
        return int(client.xlen(f"{settings.key_prefix}:{{{channel}}}:events"))
    finally:
        client.close()


def stream_entries(settings: Settings, channel: str = "en") -> list[tuple[str, dict[str, str]]]:
    """A channel's event stream as Redis holds it: (id, fields), decoded."""
    client = rdb(settings)
    try:
        rows = client.xrange(f"{settings.key_prefix}:{{{channel}}}:events")
        return [(i.decode(), {k.decode(): v.decode() for k, v in f.items()}) for i, f in rows]
    finally:
        client.close()


# Stream entry fields as redis-py's XADD takes them (its dict type is invariant).
EntryFields = dict[
    bytes | bytearray | memoryview | str | int | float,
    bytes | bytearray | memoryview | str | int | float,
]


def item_entry(uri: str, headline: str, *, author: str = "test") -> EntryFields:
    """An item's first version as a stream entry, as ticker writes one (docs/streams.md):
    for tests that write straight into Redis."""
    now = datetime.now(UTC)
    item = {
        "uri": uri,
        "channel": "en",
        "version": 1,
        "headline": headline,
        "language": "en",
        "created_at": now.isoformat(),
        "updated_at": now.isoformat(),
        "expires_at": (now + timedelta(hours=1)).isoformat(),
        "author": author,
    }
    return {"v": "1", "type": "item", "uri": uri, "item": json.dumps(item)}


def big_entry(n: int, size: int = 16_000) -> EntryFields:
    """Item ``big{n}`` with a headline of ``size`` bytes: a few fill a socket's buffers."""
    return item_entry(f"big{n}", "x" * size)


def keys_holding(settings: Settings, text: str) -> list[str]:
    """Every key under the test's prefix whose value contains ``text`` anywhere."""
    client = rdb(settings)
    needle = text.encode()
    found = []
    try:
        for key in client.scan_iter(match=f"{settings.key_prefix}:*", count=1000):
            kind = client.type(key).decode()
            if kind == "string":
                values = [client.get(key) or b""]
            elif kind == "hash":
                values = [k + b"=" + v for k, v in client.hgetall(key).items()]
            elif kind == "list":
                values = client.lrange(key, 0, -1)
            elif kind == "zset":
                values = client.zrange(key, 0, -1)
            elif kind == "stream":
                values = [b" ".join(k + v for k, v in f.items()) for _, f in client.xrange(key)]
                # XDEL leaves deleted entries' bytes in the stream's nodes: look there too
                # (DUMP may compress them, so a miss here proves less than a hit).
                values.append(client.dump(key) or b"")
            else:
                values = [client.dump(key) or b""]
            if any(needle in v for v in values):
                found.append(key.decode())
    finally:
        client.close()
    return found
