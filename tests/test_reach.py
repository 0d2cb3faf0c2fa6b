"""Reach: how many readers each item was delivered to, summed over every process, in the
desk's reads only; counted once per batch, never per delivery."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
import pytest

from tests.cli_helpers import cli_env, run
from tests.helpers import TickerProcess, bearer
from tests.sse import connected, start_reader
from ticker.settings import Settings

pytestmark = pytest.mark.anyio


async def _reach(http: httpx.AsyncClient, url: str, token: str, uri: str) -> int:
    r = await http.get(f"{url}/channels/en/items/{uri}", headers=bearer(token))
    assert r.status_code == 200, r.text
    return int(r.json()["reach"])


async def _until(check: Any, timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.05)


async def test_reach_sums_the_readers_of_every_process(
    ticker_server: TickerProcess, settings: Settings, tmp_path: Path
) -> None:
    second = TickerProcess(ticker_server.env, log=tmp_path / "second.log")
    await anyio.to_thread.run_sync(second.start)
    second.token = ticker_server.token
    token, urls = ticker_server.token, (ticker_server.url, second.url)
    readers = [
        await connected(start_reader(f"{ticker_server.url}/channels/en/events"), timeout=10),
        await connected(start_reader(f"{ticker_server.url}/channels/en/events"), timeout=10),
        await connected(start_reader(f"{second.url}/channels/en/events"), timeout=10),
        await connected(
            start_reader(f"{second.url}/channels/en/events", params={"region": "europe"}),
            timeout=10,
        ),
    ]
    try:
        async with httpx.AsyncClient(timeout=10) as http:

            async def post(**body: Any) -> str:
                r = await http.post(
                    f"{ticker_server.url}/channels/en/items", json=body, headers=bearer(token)
                )
                assert r.status_code == 201, r.text
                return str(r.json()["uri"])

            everyone = await post(headline="For every reader")  # global: all four
            asia = await post(headline="Asia only", regions=["asia"])  # not the europe one
            for reader in readers:
                await reader.wait_for(lambda r: len(r.of("item")) >= 1, timeout=10)

            async def counted() -> bool:
                got = [await _reach(http, urls[0], token, u) for u in (everyone, asia)]
                return got == [4, 3]

            await _until(counted)
            # Every process answers the same sum; anonymous readers never see it.
            assert await _reach(http, second.url, token, everyone) == 4
            public = await http.get(f"{second.url}/channels/en/items/{everyone}")
            assert "reach" not in public.json()
            listed = await http.get(f"{urls[1]}/channels/en/items", headers=bearer(token))
            assert {i["uri"]: i["reach"] for i in listed.json()["items"]} == {
                everyone: 4,
                asia: 3,
            }
            assert "reach" not in (await http.get(f"{urls[1]}/channels/en/items")).text
            rows = await http.get(
                f"{urls[0]}/channels/en/items", params={"history": "true"}, headers=bearer(token)
            )
            assert {r["reach"] for r in rows.json()["items"]} == {4, 3}

            # A new reader gets the current items: each reaches one reader more.
            late = await connected(start_reader(f"{second.url}/channels/en/events"), timeout=10)
            readers.append(late)
            await late.wait_for(lambda r: len(r.of("item")) == 2)

            async def recounted() -> bool:
                got = [await _reach(http, urls[1], token, u) for u in (everyone, asia)]
                return got == [5, 4]

            await _until(recounted)
    finally:
        for reader in readers:
            await reader.close()
        await anyio.to_thread.run_sync(second.stop)

    # ticker ls and ticker history show it.
    (tmp_path / "cli-state").mkdir()
    env = cli_env(tmp_path, TICKER_URL=ticker_server.url, TICKER_TOKEN=token)
    listed_cli = await anyio.to_thread.run_sync(run, env, "ls")
    assert {
        line.split("\t")[0]: line.split("\t")[-1] for line in listed_cli.stdout.splitlines()
    } == {
        everyone: "5",
        asia: "4",
    }
    history_cli = await anyio.to_thread.run_sync(run, env, "history")
    assert {line.split("\t")[6] for line in history_cli.stdout.splitlines()} == {"5", "4"}


async def _settled(http: httpx.AsyncClient, server: TickerProcess, uris: list[str]) -> list[int]:
    """Reach once every count so far is written: a marker item posted after the rest is
    counted in a later batch, and written after them (one writer, in order). Only the
    probe sees the marker, and the probe sees none of the items (urgency 1 only)."""
    probe = await connected(
        start_reader(f"{server.url}/channels/en/events?max_urgency=1"), timeout=10
    )
    r = await http.post(
        f"{server.url}/channels/en/items",
        # A headline of its own: a second "Marker" would be a duplicate (dupes.py).
        json={"headline": f"Marker {uuid.uuid4().hex[:8]}", "urgency": 1, "regions": ["nowhere"]},
        headers=bearer(server.token),
    )
    marker = str(r.json()["uri"])
    try:

        async def marked() -> bool:
            return await _reach(http, server.url, server.token, marker) >= 1

        await _until(marked)
    finally:
        await probe.close()
    return [await _reach(http, server.url, server.token, uri) for uri in uris]


async def test_an_item_reaches_each_connection_once_however_often_it_is_corrected(
    ticker_server: TickerProcess,
) -> None:
    readers = [
        await connected(start_reader(f"{ticker_server.url}/channels/en/events"), timeout=10),
        await connected(start_reader(f"{ticker_server.url}/channels/en/events"), timeout=10),
    ]
    try:
        item = ticker_server.post("en", headline="Death toll rises to three")
        for reader in readers:
            await reader.wait_for(lambda r: len(r.of("item")) >= 1, timeout=10)
        for text in ("Death toll rises to four", "Death toll rises to four, police say"):
            ticker_server.patch("en", item["uri"], headline=text)
        for reader in readers:
            await reader.wait_for(lambda r: len(r.of("item")) >= 3, timeout=10)
        async with httpx.AsyncClient(timeout=10) as http:
            assert await _settled(http, ticker_server, [item["uri"]]) == [2]
    finally:
        for reader in readers:
            await reader.close()


async def test_the_desks_own_stream_and_preview_are_not_counted(
    ticker_server: TickerProcess,
) -> None:
    before = ticker_server.post("en", headline="Already on air")
    desk = await connected(
        start_reader(f"{ticker_server.url}/channels/en/events?reach=off"), timeout=10
    )
    reader = await connected(start_reader(f"{ticker_server.url}/channels/en/events"), timeout=10)
    try:
        item = ticker_server.post("en", headline="Roads closed")
        for each in (desk, reader):
            await each.wait_for(lambda r: len(r.of("item")) >= 2, timeout=10)
        async with httpx.AsyncClient(timeout=10) as http:
            # The desk's stream saw both (its opening and live): neither counts it.
            assert await _settled(http, ticker_server, [before["uri"], item["uri"]]) == [1, 1]
    finally:
        await desk.close()
        await reader.close()


async def test_a_correction_that_brings_an_item_into_a_readers_view_counts_that_reader(
    ticker_server: TickerProcess,
) -> None:
    europe = await connected(
        start_reader(f"{ticker_server.url}/channels/en/events", params={"region": "europe"}),
        timeout=10,
    )
    everyone = await connected(start_reader(f"{ticker_server.url}/channels/en/events"), timeout=10)
    try:
        item = ticker_server.post("en", headline="Border closed", regions=["asia"])
        await everyone.wait_for(lambda r: len(r.of("item")) >= 1, timeout=10)
        async with httpx.AsyncClient(timeout=10) as http:
            assert await _settled(http, ticker_server, [item["uri"]]) == [1]
            ticker_server.patch("en", item["uri"], regions=["asia", "europe"])
            await europe.wait_for(lambda r: len(r.of("item")) >= 1, timeout=10)
            await everyone.wait_for(lambda r: len(r.of("item")) >= 2, timeout=10)
            # The europe reader is reached now; the other one was reached already.
            assert await _settled(http, ticker_server, [item["uri"]]) == [2]
    finally:
        await europe.close()
        await everyone.close()
