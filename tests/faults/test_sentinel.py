"""Redis Sentinel: a primary, a replica and one sentinel started here on loopback ports;
ticker on ``redis+sentinel://host:port/service``. A reader gets every item posted before
and after a failover (``SENTINEL FAILOVER``), in order, with no reconnect of its own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.faults.sentinels import SERVICE, SentinelSet
from tests.helpers import make_token, serve_app
from tests.sse import start_reader
from ticker.server.embedded import find_redis_server
from ticker.settings import Settings

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelSet]:
    binary = find_redis_server()
    if binary is None:
        pytest.skip("no redis-server installed: the Sentinel test starts its own")
    group = SentinelSet(tmp_path, binary)
    try:
        group.start()
        yield group
    finally:
        group.stop()


async def test_a_reader_gets_every_item_across_a_sentinel_failover(
    sentinels: SentinelSet, tmp_path: Path
) -> None:
    url = f"redis+sentinel://127.0.0.1:{sentinels.sentinel}/{SERVICE}"
    settings = Settings(
        redis_url=SecretStr(url),
        key_prefix="tksent",
        state_dir=tmp_path / "s",
        heartbeat_s=1.0,
        read_block_ms=1000,
        write_rate_per_minute=60_000,
    )
    token = await asyncio.to_thread(make_token, settings, "editor", ["*"])
    async with serve_app(settings) as (base, _app):
        import httpx

        async with httpx.AsyncClient(base_url=base, timeout=10) as http:

            async def post(text: str) -> None:
                deadline = time.monotonic() + 20
                while True:  # a 503 while the primary changes; the same key on a retry
                    r = await http.post(
                        "/channels/en/items",
                        json={"headline": text},
                        headers={
                            "Authorization": f"Bearer {token}",
                            "Idempotency-Key": text.replace(" ", "-"),
                        },
                    )
                    if r.status_code == 201 or time.monotonic() > deadline:
                        assert r.status_code == 201, r.text
                        return
                    assert r.status_code == 503, r.text
                    await asyncio.sleep(0.2)

            reader = start_reader(f"{base}/channels/en/events")
            try:
                await reader.wait_for(lambda r: r.status == 200)
                sent = [f"item {n}" for n in range(6)]
                for text in sent[:3]:
                    await post(text)
                await reader.wait_for(lambda r: len(r.of("item")) == 3)
                await asyncio.to_thread(sentinels.failover)
                for text in sent[3:]:
                    await post(text)
                await reader.wait_for(lambda r: len(r.of("item")) == 6, timeout=20)
                assert [i["headline"] for i in reader.of("item")] == sent
                assert (await http.get("/readyz")).status_code == 200
            finally:
                await reader.close()
