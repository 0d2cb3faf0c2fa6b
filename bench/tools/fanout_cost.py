"""CPU per fan-out batch, in-process: one channel reader offering batches of items to N
subscribers in queued mode (no sockets, no Redis on the hot path), so what is measured is
the fan-out's own bookkeeping. Run it against two trees to compare them:

    PYTHONPATH=/path/to/tree .venv/bin/python bench/tools/fanout_cost.py

It prints µs per batch and per delivery (median of several rounds) as one JSON line.
With ``DIRECT=1`` every subscriber is a caught-up reader with a socket (the direct
writes ``ticker serve`` makes, as in S1): each batch is one write per reader, counted by
a transport that only counts bytes.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from datetime import timedelta

from pydantic import SecretStr
from ticker.domain.events import Filter
from ticker.domain.models import Item, utcnow
from ticker.fanout.channel import ChannelReader
from ticker.fanout.hub import Hub
from ticker.fanout.socket import Socket, identity
from ticker.fanout.subscriber import Subscriber
from ticker.newsroom.reach import Reach
from ticker.ops.metrics import Metrics
from ticker.settings import Settings
from ticker.store import Entry, Store

READERS = 1000
ITEMS_PER_BATCH = 10
BATCHES = 300
ROUNDS = 7
# A few distinct filters, as a newsroom's pages would have.
FILTERS = [Filter(), Filter(regions=frozenset({"europe"})), Filter(max_urgency=3)]


def _entries(start: int) -> list[Entry]:
    now = utcnow()
    rows = []
    for n in range(ITEMS_PER_BATCH):
        item = Item(
            uri=f"bench{start + n:08d}",
            channel="en",
            version=1,
            headline=f"Benchmark headline number {start + n}, about as long as a real one",
            regions=["europe"] if n % 2 else [],
            urgency=1 + n % 9,
            language="en",
            created_at=now,
            updated_at=now,
            expires_at=now + timedelta(hours=1),
            author="bench",
        )
        fields = {"v": "1", "type": "item", "uri": item.uri, "item": item.model_dump_json()}
        rows.append(Entry(f"{1_700_000_000_000 + start + n}-0", fields))
    return rows


class CountingTransport:
    """A socket's transport that only counts what is written to it."""

    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def is_closing(self) -> bool:
        return False


async def main() -> None:
    settings = Settings(redis_url=SecretStr("redis://127.0.0.1:6379/0"), key_prefix="bench-fanout")
    store = Store("redis://127.0.0.1:6379/0", prefix="bench-fanout")
    reach = Reach(store)  # not started: its Redis writes are off the hot path

    async def nothing(channel: str) -> tuple[str, list[Item]]:
        return "0-0", []

    hub = Hub(store, settings, Metrics(), nothing, reach=reach)
    # A real channel reader with its XREAD task cancelled at once: batches are handed in.
    reader = ChannelReader(
        "en", store=store, settings=settings, metrics=hub.metrics, reach=hub.reach
    )
    reader.task.cancel()
    reader.stopped = True
    subs = [Subscriber(FILTERS[n % len(FILTERS)], 10**9) for n in range(READERS)]
    for sub in subs:
        reader.join(sub)
    direct = os.environ.get("DIRECT") == "1"
    if direct:
        transport = CountingTransport()
        for sub in subs:
            socket = Socket(transport, http_version="1.1")  # type: ignore[arg-type]
            socket.framing, socket.started = identity, True  # close-delimited, as native
            sub.go_direct(socket)
    batches = [_entries(n * ITEMS_PER_BATCH) for n in range(BATCHES)]
    per_batch = []
    for _ in range(ROUNDS):
        spent = 0.0
        for entries in batches:
            started = time.process_time()
            reader._fan_out(entries)
            spent += time.process_time() - started
            for sub in subs:  # drain outside the timing, as the readers' tasks would
                sub._pending.clear()
                sub._waiting = 0
                sub.last_sent = (0, 0)
        per_batch.append(spent / BATCHES * 1e6)
    await store.close()
    median = statistics.median(per_batch)
    print(
        json.dumps(
            {
                "readers": READERS,
                "direct": direct,
                "items_per_batch": ITEMS_PER_BATCH,
                "us_per_batch": round(median, 1),
                "us_per_delivery": round(median / (READERS * ITEMS_PER_BATCH), 4),
                "rounds": [round(x, 1) for x in per_batch],
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
