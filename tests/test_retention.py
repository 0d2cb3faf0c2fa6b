"""Retention against a real Redis: expiry reaches live readers, live_max_items, exact
trimming by count and age, embargo release, one expiry entry across processes, restart
safety, history paging and the audit trail. TTLs are seconds, never minutes."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.helpers import TickerProcess, make_token, post_item, wait_until
from tests.redis_data import stream_entries
from tests.sse import start_reader
from ticker.domain.models import utcnow
from ticker.settings import Channel, Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "sweep_interval_s": 0.1,
        "channels": (
            Channel(
                name="en",
                item_ttl=timedelta(minutes=30),
                live_max_items=3,
                history_max_items=12,
                history_max_age=timedelta(hours=1),
            ),
            Channel(name="es", language="es"),
        ),
    }


def rdb(settings: Settings) -> redis.Redis:
    assert settings.redis_url is not None
    return redis.Redis.from_url(settings.redis_url.get_secret_value(), decode_responses=True)


async def post(api: httpx.AsyncClient, channel: str = "en", **fields: Any) -> dict[str, Any]:
    return await post_item(api, fields.pop("headline", "Shooter at large"), channel, **fields)


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_expiry_reaches_a_live_reader_within_two_seconds(
    api: httpx.AsyncClient, server: tuple[str, Any]
) -> None:
    keep = await post(api, headline="Roads reopened")
    item = await post(api, ttl="1s")
    reader = start_reader(f"{server[0]}/channels/en/events")
    try:
        await reader.wait_for(lambda r: len(r.of("item")) == 2)
        await reader.wait_for(lambda r: r.of("remove"), timeout=4)
        received = utcnow()
        assert reader.of("remove") == [{"uri": item["uri"], "reason": "expire"}]
        assert received - parse_time(item["expires_at"]) < timedelta(seconds=2)
    finally:
        await reader.close()
    listed = (await api.get("/channels/en/items")).json()["items"]
    assert [i["uri"] for i in listed] == [keep["uri"]]
    late = start_reader(f"{server[0]}/channels/en/events")
    try:
        await late.wait_for(lambda r: len(r.events) == 1)
        await asyncio.sleep(0.2)
        assert [i["uri"] for i in late.of("item")] == [keep["uri"]]
    finally:
        await late.close()


async def test_default_ttl_comes_from_the_channel(api: httpx.AsyncClient) -> None:
    item = await post(api)
    lifetime = parse_time(item["expires_at"]) - parse_time(item["created_at"])
    assert lifetime == timedelta(minutes=30)


async def test_a_correction_can_extend_or_shorten_the_expiry(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    item = await post(api, ttl="1s")
    r = await api.patch(f"/channels/en/items/{item['uri']}", json={"ttl": "10m"})
    assert r.status_code == 200
    await asyncio.sleep(1.5)
    assert [i["uri"] for i in (await api.get("/channels/en/items")).json()["items"]] == [
        item["uri"]
    ]
    r = await api.patch(f"/channels/en/items/{item['uri']}", json={"ttl": "1s"})
    await asyncio.sleep(1.6)
    assert (await api.get("/channels/en/items")).json()["items"] == []
    expiries = [f for _, f in stream_entries(settings) if f.get("reason") == "expire"]
    assert len(expiries) == 1


async def test_live_max_items_pushes_the_oldest_off_the_ticker(
    api: httpx.AsyncClient, server: tuple[str, Any]
) -> None:
    items = [await post(api, headline=f"item {n}") for n in range(3)]
    reader = start_reader(f"{server[0]}/channels/en/events")
    try:
        await reader.wait_for(lambda r: len(r.events) == 3)
        newest = await post(api, headline="item 3")
        await reader.wait_for(lambda r: len(r.events) == 5)
        assert reader.of("remove") == [{"uri": items[0]["uri"], "reason": "expire"}]
        assert reader.of("item")[-1]["uri"] == newest["uri"]
    finally:
        await reader.close()
    listed = [i["uri"] for i in (await api.get("/channels/en/items")).json()["items"]]
    assert listed == [newest["uri"], items[2]["uri"], items[1]["uri"]]
    history = (await api.get("/channels/en/items", params={"history": "true"})).json()
    assert items[0]["uri"] in {e["uri"] for e in history["items"]}


async def test_history_is_trimmed_exactly_by_count(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    for n in range(20):
        await post(api, headline=f"item {n}")
    assert len(stream_entries(settings)) == 12  # history_max_items, exactly


async def test_entries_older_than_the_age_rule_are_never_handed_out(
    api: httpx.AsyncClient, server: tuple[str, Any], settings: Settings
) -> None:
    # An entry two hours old (history_max_age is 1 h) that trimming has not removed yet.
    old_ms = int((utcnow() - timedelta(hours=2)).timestamp() * 1000)
    now = utcnow()
    old = {
        "uri": "old1",
        "channel": "en",
        "version": 1,
        "headline": "stale",
        "language": "en",
        "created_at": now.isoformat(),
        "updated_at": now.isoformat(),
        "expires_at": (now + timedelta(minutes=5)).isoformat(),
        "author": "x",
    }
    client = rdb(settings)
    client.xadd(
        f"{settings.key_prefix}:{{en}}:events",
        {"v": "1", "type": "item", "uri": "old1", "item": json.dumps(old)},
        id=f"{old_ms}-0",
    )
    client.close()
    fresh = await post(api, headline="fresh")
    history = (await api.get("/channels/en/items", params={"history": "true"})).json()
    assert [e["uri"] for e in history["items"]] == [fresh["uri"]]
    reader = start_reader(
        f"{server[0]}/channels/en/events", headers={"Last-Event-ID": f"{old_ms}-0"}
    )
    try:
        await reader.wait_for(lambda r: len(r.events) == 2)
        assert reader.events[0].event == "reset"
        assert [i["uri"] for i in reader.of("item")] == [fresh["uri"]]
    finally:
        await reader.close()


async def test_history_is_trimmed_by_age(settings: Settings, tmp_path: Path) -> None:
    from tests.helpers import serve_app

    short = settings.model_copy(
        update={
            "channels": (
                Channel(
                    name="en", item_ttl=timedelta(seconds=1), history_max_age=timedelta(seconds=2)
                ),
            )
        }
    )
    token = make_token(short, "ager", ["en"])
    async with (
        serve_app(short) as (url, app),
        httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}) as api,
    ):
        await post(api, headline="soon gone", ttl="1s")
        assert len(stream_entries(short)) == 1
        await asyncio.sleep(2.3)
        await app.state.services.sweeper.sweep(trim=True)
        remaining = stream_entries(short)
        # The item's own entry is gone; only its expiry (newer) may remain.
        assert all(f["type"] == "remove" for _, f in remaining)


async def test_embargoed_item_is_invisible_until_released(
    api: httpx.AsyncClient, server: tuple[str, Any]
) -> None:
    release_at = utcnow() + timedelta(seconds=1.5)
    item = await post(
        api, headline="Embargoed: results at noon", embargoed_until=release_at.isoformat()
    )
    killed = await post(
        api, headline="Embargoed, then killed", embargoed_until=release_at.isoformat()
    )
    await api.delete(f"/channels/en/items/{killed['uri']}")
    reader = start_reader(f"{server[0]}/channels/en/events")
    try:
        await asyncio.wait_for(reader.connected.wait(), 5)
        assert (await api.get("/channels/en/items")).json()["items"] == []
        await asyncio.sleep(0.5)
        assert reader.events == []
        await reader.wait_for(lambda r: r.of("item"), timeout=4)
        assert utcnow() >= release_at
        released = reader.of("item")
        assert [i["uri"] for i in released] == [item["uri"]]
        assert released[0]["headline"] == "Embargoed: results at noon"
        await asyncio.sleep(0.5)
        assert len(reader.events) == 1  # released once; the killed one never
    finally:
        await reader.close()
    listed = (await api.get("/channels/en/items")).json()["items"]
    assert [i["uri"] for i in listed] == [item["uri"]]


async def test_history_pages_newest_first_with_statuses(api: httpx.AsyncClient) -> None:
    a = await post(api, headline="a")
    b = await post(api, headline="b")
    await api.patch(f"/channels/en/items/{a['uri']}", json={"headline": "a, corrected"})
    await api.patch(f"/channels/en/items/{b['uri']}", json={"status": "withheld"})
    await api.delete(f"/channels/en/items/{a['uri']}")
    seen: list[dict[str, Any]] = []
    before = None
    while True:
        params = {"history": "true", "limit": "2", **({"before": before} if before else {})}
        body = (await api.get("/channels/en/items", params=params)).json()
        seen += body["items"]
        before = body["next_before"]
        if not before:
            break
    assert [(e["headline"], e["event"], e["reason"], e["status"]) for e in seen] == [
        ("a, corrected", "remove", "kill", "canceled"),
        ("b", "remove", "withhold", "withheld"),
        ("a, corrected", "item", None, "usable"),
        ("b", "item", None, "usable"),
        ("a", "item", None, "usable"),
    ]
    ids = [e["id"] for e in seen]
    assert ids == sorted(ids, reverse=True)


async def test_audit_trail_lists_every_version_with_its_author(
    api: httpx.AsyncClient, server: tuple[str, Any], settings: Settings
) -> None:
    item = await post(api, headline="Shooter at large")
    other = make_token(settings, "night-desk", ["en"])
    async with httpx.AsyncClient(
        base_url=server[0], headers={"Authorization": f"Bearer {other}"}
    ) as night:
        await night.patch(
            f"/channels/en/items/{item['uri']}", json={"headline": "Shooter arrested"}
        )
    await api.delete(f"/channels/en/items/{item['uri']}")
    body = (await api.get(f"/channels/en/items/{item['uri']}")).json()
    trail = [(v["version"], v["author"], v["headline"], v["status"]) for v in body["versions"]]
    assert trail == [
        (1, "editor", "Shooter at large", "usable"),
        (2, "night-desk", "Shooter arrested", "usable"),
        (3, "editor", "Shooter arrested", "canceled"),
    ]


BAD_RETENTION = [
    ({"ttl": 0}, "ttl"),
    ({"ttl": -5}, "ttl"),
    ({"ttl": "0s"}, "ttl"),
    ({"ttl": "2h"}, "ttl"),
    ({"ttl": "5parsecs"}, "ttl"),
    ({"ttl": ""}, "ttl"),
    ({"ttl": True}, "ttl"),
    ({"ttl": "30m", "expires_at": "2099-01-01T00:00:00Z"}, "ttl"),
    ({"expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
    ({"expires_at": "2099-01-01T00:00:00Z"}, "expires_at"),
    ({"expires_at": "2030-01-01T00:00:00"}, "expires_at"),
    ({"expires_at": "tomorrow"}, "expires_at"),
    ({"embargoed_until": "2020-01-01T00:00:00Z"}, "embargoed_until"),
    ({"embargoed_until": "2099-01-01T00:00:00Z"}, "embargoed_until"),
]


@pytest.mark.parametrize(
    ("fields", "field"), BAD_RETENTION, ids=[json.dumps(f) for f, _ in BAD_RETENTION]
)
async def test_bad_retention_input_is_422_naming_the_field(
    api: httpx.AsyncClient, settings: Settings, fields: dict[str, Any], field: str
) -> None:
    r = await api.post("/channels/en/items", json={"headline": "x", **fields})
    assert r.status_code == 422, r.text
    body = r.json()
    assert any(d["field"] == field for d in body["details"]), body
    assert field in body["message"]
    assert stream_entries(settings) == []


async def test_ttl_over_the_maximum_names_the_allowed_range(api: httpx.AsyncClient) -> None:
    r = await api.post("/channels/en/items", json={"headline": "x", "ttl": "2h"})
    assert "1h" in r.json()["message"]
    uri = (await post(api))["uri"]
    r = await api.patch(f"/channels/en/items/{uri}", json={"ttl": "5parsecs"})
    assert r.status_code == 422 and "ttl" in r.json()["message"]


# -- several processes, restarts --------------------------------------------------------


@pytest.fixture
def ticker_server_env() -> dict[str, str]:
    return {"TICKER_SWEEP_INTERVAL_S": "0.1"}


def test_two_processes_write_one_expiry_per_item(
    ticker_server: TickerProcess, settings: Settings, tmp_path: Path
) -> None:
    second = TickerProcess(ticker_server.env, log=tmp_path / "second.log")
    second.start()
    try:
        ticker_server.token = second.token = make_token(settings, "two", ["*"])
        uris = {
            ticker_server.post("en", headline=f"expiring {n}", ttl="1s")["uri"] for n in range(8)
        }
        wait_until(
            lambda: len([f for _, f in stream_entries(settings) if f["type"] == "remove"]) >= 8,
            timeout=6,
        )
        time.sleep(0.5)  # time for a racing duplicate to show up, if there were one
        removes = [f for _, f in stream_entries(settings) if f["type"] == "remove"]
        assert sorted(f["uri"] for f in removes) == sorted(uris)
        assert {f["reason"] for f in removes} == {"expire"}
    finally:
        second.stop()


def test_a_restart_loses_no_pending_expiry(
    ticker_server: TickerProcess, settings: Settings
) -> None:
    item = ticker_server.post("en", headline="expires while we are down", ttl="2s")
    ticker_server.stop()
    time.sleep(2.5)
    assert not [f for _, f in stream_entries(settings) if f["type"] == "remove"]
    ticker_server.start()
    wait_until(lambda: [f for _, f in stream_entries(settings) if f["type"] == "remove"], timeout=3)
    listed = httpx.get(f"{ticker_server.url}/channels/en/items").json()["items"]
    assert item["uri"] not in {i["uri"] for i in listed}
