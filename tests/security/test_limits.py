"""Limits that keep one client from taking the service: write rate per token, reader caps."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.helpers import start_reader

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("settings_overrides", [{"write_rate_per_minute": 60,
                                                 "write_burst": 3}])
async def test_writes_over_the_token_rate_get_429_with_retry_after(
        server: tuple[str, Any], token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server[0], headers=headers, timeout=5) as api:
        codes = [(await api.post("/channels/en/items", json={"headline": f"n{n}"}))
                 for n in range(6)]
    assert [r.status_code for r in codes[:3]] == [201, 201, 201]
    limited = [r for r in codes if r.status_code == 429]
    assert len(limited) >= 2
    assert limited[0].json()["error"] == "rate_limited"
    assert 1 <= int(limited[0].headers["retry-after"]) <= 2
    assert token not in limited[0].text


@pytest.mark.parametrize("settings_overrides", [{"max_readers": 2,
                                                 "over_capacity_retry_ms": 45000}])
async def test_reader_over_the_cap_gets_200_a_long_retry_and_a_close(
        server: tuple[str, Any]) -> None:
    url = f"{server[0]}/channels/en/events"
    readers = [start_reader(url) for _ in range(2)]
    try:
        for reader in readers:
            await asyncio.wait_for(reader.connected.wait(), 5)
        extra = start_reader(url)
        await asyncio.wait_for(extra.ended.wait(), 5)  # closed, not left hanging
        assert extra.status == 200
        assert extra.retry == 45000
        assert extra.events == []
    finally:
        for reader in readers:
            await reader.close()
    hub = server[1].state.services.hub
    for _ in range(100):  # the server notices the two disconnects
        if hub.connections == 0:
            break
        await asyncio.sleep(0.05)
    assert hub.connections == 0
    again = start_reader(url)  # the slots were given back
    try:
        await asyncio.wait_for(again.connected.wait(), 5)
        await asyncio.sleep(0.3)
        assert not again.ended.is_set()
    finally:
        await again.close()


@pytest.mark.parametrize("settings_overrides", [{"max_readers_per_ip": 1}])
async def test_per_address_cap(server: tuple[str, Any]) -> None:
    url = f"{server[0]}/channels/en/events"
    first = start_reader(url)
    try:
        await asyncio.wait_for(first.connected.wait(), 5)
        second = start_reader(url)
        await asyncio.wait_for(second.ended.wait(), 5)
        assert second.status == 200 and second.events == []
    finally:
        await first.close()


def test_tokens_never_reach_logs_or_error_bodies(ticker_server: Any, tmp_path: Any) -> None:
    wrong = "tk_" + "w" * 43
    bodies = []
    with httpx.Client(base_url=ticker_server.url, timeout=5) as client:
        for auth in (f"Bearer {wrong}", f"Basic {wrong}", wrong):
            r = client.post("/channels/en/items", json={"headline": "x"},
                            headers={"Authorization": auth})
            assert r.status_code == 401
            bodies.append(r.text)
        r = client.post("/channels/en/items", json={"headline": "x" * 300},
                        headers={"Authorization": f"Bearer {ticker_server.token}"})
        assert r.status_code == 422
        bodies.append(r.text)
    ticker_server.stop()  # flush the log
    log = (tmp_path / "ticker.log").read_text()
    assert "POST /channels/en/items" in log  # the log is really there
    for secret in (wrong, ticker_server.token):
        assert secret not in log
        assert all(secret not in body for body in bodies)
