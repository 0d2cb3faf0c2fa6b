"""Acknowledged means durable (``TICKER_ACK_REPLICAS=1``): a primary, a replica and a
sentinel started here, the replica following the primary through a proxy the test holds
back. A kill and a post answered 200/201 survive the primary's death; a write the replica
could not confirm answers 503 ``not_durable`` within the timeout (it is the one lost), and
its retry with the same Idempotency-Key writes it once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from tests.faults.proxy import Proxy
from tests.faults.sentinels import SERVICE, SentinelSet
from tests.helpers import make_token, serve_app
from tests.sse import start_reader
from ticker.server.embedded import find_redis_server
from ticker.settings import Settings

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

TIMEOUT_MS = 500
LAG_S = 0.3  # how long the link is held back while acknowledged writes wait


@pytest.fixture
async def linked(tmp_path: Path) -> AsyncIterator[tuple[SentinelSet, Proxy]]:
    """The set, with the replica's link to the primary through a freezable proxy."""
    binary = find_redis_server()
    if binary is None:
        pytest.skip("no redis-server installed: the Sentinel test starts its own")
    group = SentinelSet(tmp_path, binary)
    group.down_after_ms = 1000
    async with Proxy(group.primary) as proxy:
        group.upstream = proxy.port
        try:
            await asyncio.to_thread(group.start)  # the proxy forwards on this loop meanwhile
            yield group, proxy
        finally:
            await asyncio.to_thread(group.stop)


async def until_answered(call: Any) -> httpx.Response:
    """``call()`` until it is not 503 store_unavailable (the primary changing)."""
    deadline = time.monotonic() + 15
    while True:
        r: httpx.Response = await call()
        changing = r.status_code == 503 and r.json()["error"] == "store_unavailable"
        if not changing or time.monotonic() > deadline:
            return r
        await asyncio.sleep(0.2)


async def test_acknowledged_writes_survive_a_failover_and_unconfirmed_ones_say_so(
    linked: tuple[SentinelSet, Proxy], tmp_path: Path
) -> None:
    group, proxy = linked
    settings = Settings(
        redis_url=SecretStr(f"redis+sentinel://127.0.0.1:{group.sentinel}/{SERVICE}"),
        key_prefix="tkdurable",
        state_dir=tmp_path / "s",
        heartbeat_s=1.0,
        read_block_ms=1000,
        write_rate_per_minute=60_000,
        ack_replicas=1,
        ack_timeout_ms=TIMEOUT_MS,
    )
    token = await asyncio.to_thread(make_token, settings, "chief", ["*"], "chief")
    auth = {"Authorization": f"Bearer {token}"}
    async with (
        serve_app(settings) as (base, _app),
        httpx.AsyncClient(base_url=base, timeout=10, headers=auth) as http,
    ):

        async def post(text: str) -> httpx.Response:
            key = {"Idempotency-Key": text.replace(" ", "-")}
            return await http.post("/channels/en/items", json={"headline": text}, headers=key)

        async def kill(uri: str) -> httpx.Response:
            return await http.delete(f"/channels/en/items/{uri}")

        libel = await post("libel")
        assert libel.status_code == 201, libel.text
        libel_uri = libel.json()["uri"]

        # The link lags: the kill and the post are answered once the replica has them.
        proxy.frozen.set()
        asyncio.get_running_loop().call_later(LAG_S, proxy.frozen.clear)
        began = time.monotonic()
        killed, posted = await asyncio.gather(kill(libel_uri), post("acknowledged post"))
        assert (killed.status_code, posted.status_code) == (200, 201), (killed.text, posted.text)
        assert time.monotonic() - began >= LAG_S  # they waited for the replica

        # The link stops: a post is applied on the primary alone, and the answer says so.
        proxy.frozen.set()
        began = time.monotonic()
        unconfirmed = await post("unconfirmed post")
        took = time.monotonic() - began
        assert unconfirmed.status_code == 503, unconfirmed.text
        assert unconfirmed.json()["error"] == "not_durable"
        assert unconfirmed.headers["Retry-After"] == "1"
        assert TIMEOUT_MS / 1000 <= took < TIMEOUT_MS / 1000 + 2
        # A retry with the same key is answered from the first write: still unconfirmed,
        # never a 201 the replica does not back.
        again = await post("unconfirmed post")
        assert (again.status_code, again.json()["error"]) == (503, "not_durable")

        # The primary dies with the link still frozen; the replica is promoted.
        await asyncio.to_thread(group.crash_primary)

        item = await until_answered(lambda: http.get(f"/channels/en/items/{libel_uri}"))
        assert item.status_code == 200, item.text
        assert item.json()["status"] == "canceled"  # the acknowledged kill stayed
        reader = start_reader(f"{base}/channels/en/events")
        try:
            on_air = await until_answered(lambda: http.get("/channels/en/items"))
            assert on_air.status_code == 200, on_air.text
            headlines = [i["headline"] for i in on_air.json()["items"]]
            # The acknowledged post is there; the unconfirmed one was lost, as its 503 said.
            assert headlines == ["acknowledged post"]
            await reader.wait_for(lambda r: r.of("item"), timeout=10)
            assert [i["headline"] for i in reader.of("item")] == ["acknowledged post"]
        finally:
            await reader.close()

        # Retried after the failover with its key: written on the new primary, which has no
        # replica left to confirm it (so 503 again); retried once more, it is not doubled.
        for _ in range(2):
            retried = await until_answered(lambda: post("unconfirmed post"))
            assert (retried.status_code, retried.json()["error"]) == (503, "not_durable")
        on_air = await http.get("/channels/en/items")
        headlines = sorted(i["headline"] for i in on_air.json()["items"])
        assert headlines == ["acknowledged post", "unconfirmed post"]
