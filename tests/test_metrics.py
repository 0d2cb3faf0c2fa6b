"""Prometheus metrics at /metrics, as an operator's dashboard would read them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.helpers import metric_samples, ops_headers
from tests.sse import start_reader
from ticker.settings import Channel, Settings

pytestmark = pytest.mark.anyio


def sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if (
            line.startswith(name + " ")
            or line.startswith(name + "{")
            and line.split(" ")[0] == name
        ):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in metrics")


async def test_metrics_count_readers_publishes_and_deliveries(
    server: tuple[str, Any], token: str, settings: Settings
) -> None:
    url = server[0]
    readers = [start_reader(f"{url}/channels/en/events") for _ in range(2)]
    try:
        for reader in readers:
            await reader.wait_for(lambda r: r.status == 200)
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            r = await client.post(
                "/channels/en/items",
                json={"headline": "counted"},
                headers={"Authorization": f"Bearer {token}"},
            )
            uri = r.json()["uri"]
            await client.delete(
                f"/channels/en/items/{uri}", headers={"Authorization": f"Bearer {token}"}
            )
            for reader in readers:
                await reader.wait_for(lambda r: len(r.events) == 2)
            response = await client.get("/metrics", headers=ops_headers(settings))
        assert response.headers["content-type"].startswith("text/plain")
        text = response.text
        assert sample(text, 'ticker_readers{channel="en"}') == 2
        assert sample(text, 'ticker_events_published_total{channel="en",type="item"}') == 1
        assert sample(text, 'ticker_events_published_total{channel="en",type="remove"}') == 1
        assert sample(text, 'ticker_events_delivered_total{channel="en"}') == 4
        assert sample(text, 'ticker_publish_to_send_seconds_count{channel="en"}') == 2
    finally:
        for reader in readers:
            await reader.close()


async def test_stats_report_each_channel(
    server: tuple[str, Any], token: str, settings: Settings
) -> None:
    async with httpx.AsyncClient(base_url=server[0], timeout=5) as client:
        first = (
            await client.post(
                "/channels/en/items",
                json={"headline": "one"},
                headers={"Authorization": f"Bearer {token}"},
            )
        ).json()
        last = (
            await client.post(
                "/channels/en/items",
                json={"headline": "two"},
                headers={"Authorization": f"Bearer {token}"},
            )
        ).json()
        body = (await client.get("/stats", headers=ops_headers(settings))).json()
    assert body["en"] == {
        "live": 2,
        "history": 2,
        "oldest_id": first["id"],
        "last_id": last["id"],
        "readers": 0,
    }
    assert body["ar"]["history"] == 0 and body["ar"]["last_id"] is None
    (process,) = body["_fleet"]["processes"]  # this one, counted live
    assert body["_fleet"]["readers"] == 0
    assert process["readers"] == 0 and process["pid"] > 0 and process["uptime_s"] >= 0


async def test_every_metric_is_there_at_zero_from_start_up(
    server: tuple[str, Any], settings: Settings
) -> None:
    async with httpx.AsyncClient(base_url=server[0], timeout=5) as client:
        samples = metric_samples((await client.get("/metrics", headers=ops_headers(settings))).text)
    expected = ["ticker_readers_refused_total", "ticker_redis_errors_total"]
    for ch in settings.channels:
        label = f'{{channel="{ch.name}"}}'
        expected += [
            f"ticker_readers{label}",
            f"ticker_events_delivered_total{label}",
            f"ticker_readers_cut_off_total{label}",
            f"ticker_redis_reconnects_total{label}",
            f"ticker_publish_to_send_seconds_count{label}",
            f"ticker_expiry_lag_seconds_count{label}",
            f'ticker_events_published_total{{channel="{ch.name}",type="item"}}',
            f'ticker_events_published_total{{channel="{ch.name}",type="remove"}}',
        ]
    assert {name: samples.get(name) for name in expected} == {name: 0.0 for name in expected}


@pytest.mark.parametrize(
    "settings_overrides", [{"channels": (Channel(name="en", live_max_items=1),)}]
)
async def test_items_pushed_off_the_ticker_count_as_published_removes(
    server: tuple[str, Any], token: str, settings: Settings
) -> None:
    async with httpx.AsyncClient(base_url=server[0], timeout=5) as client:
        for n in range(3):
            r = await client.post(
                "/channels/en/items",
                json={"headline": f"item {n}"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert r.status_code == 201
        ops = ops_headers(settings)
        history = (await client.get("/stats", headers=ops)).json()["en"]["history"]
        text = (await client.get("/metrics", headers=ops)).text
    assert history == 5  # three items, two of them pushed out by the next
    assert sample(text, 'ticker_events_published_total{channel="en",type="item"}') == 3
    assert sample(text, 'ticker_events_published_total{channel="en",type="remove"}') == 2
