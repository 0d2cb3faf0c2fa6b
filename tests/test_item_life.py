"""An item's data has a life: it leaves Redis with its last stream entry; an expired or
killed item no longer changes (distinct 409s); and the stream entries keep the documented
contract that other services read."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from starlette.requests import Request

from tests.redis_data import keys_holding, stream_entries
from ticker.domain.errors import Conflict, Expired, Killed
from ticker.domain.models import utcnow
from ticker.http.app import ticker_error
from ticker.settings import Channel, Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "write_burst": 1000,  # the race test writes fast; the rate limit has tests of its own
        # The tests sweep when they mean to: a background sweep could take an item away
        # between two of a test's steps on a loaded machine.
        "sweep_interval_s": 60,
        "channels": (
            # Short rules, so an item's whole history leaves within the test.
            Channel(
                name="en", item_ttl=timedelta(minutes=30), live_max_items=2, history_max_items=10
            ),
            Channel(
                name="es",
                language="es",
                item_ttl=timedelta(seconds=1),
                history_max_age=timedelta(seconds=2),
            ),
        ),
    }


def sweeper(server: tuple[str, Any]) -> Any:
    return server[1].state.services.sweeper


async def expire(server: tuple[str, Any], settings: Settings, channel: str, uri: str) -> None:
    """Sweep until the sweeper has written the item's expiry (its TTL is a second)."""
    deadline = asyncio.get_running_loop().time() + 5
    expired = {"uri": uri, "reason": "expire"}
    while not any(expired.items() <= f.items() for _, f in stream_entries(settings, channel)):
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.1)
        await sweeper(server).sweep()


async def test_an_item_pushed_out_of_the_history_by_count_leaves_redis(
    api: httpx.AsyncClient, server: tuple[str, Any], settings: Settings
) -> None:
    r = await api.post(
        "/channels/en/items", json={"headline": "Old news"}, headers={"Idempotency-Key": "old-news"}
    )
    old = r.json()
    for n in range(12):  # 12 more items (and their push-out removals) fill the history
        assert (await api.post("/channels/en/items", json={"headline": f"n{n}"})).status_code == 201
    assert all(f["uri"] != old["uri"] for _, f in stream_entries(settings))
    assert keys_holding(settings, "Old news")  # the record is still there, for now
    await sweeper(server).sweep()
    assert keys_holding(settings, "Old news") == []
    assert keys_holding(settings, old["uri"]) == []
    r = await api.get(f"/channels/en/items/{old['uri']}")
    assert r.status_code == 404
    # The items still in the history keep their records.
    newest = stream_entries(settings)[-1][1]["uri"]
    assert (await api.get(f"/channels/en/items/{newest}")).status_code == 200


async def test_an_item_that_ages_out_of_the_history_leaves_redis(
    api: httpx.AsyncClient, server: tuple[str, Any], settings: Settings
) -> None:
    r = await api.post(
        "/channels/es/items", json={"headline": "Se fue"}, headers={"Idempotency-Key": "se-fue"}
    )
    item = r.json()
    await expire(server, settings, "es", item["uri"])
    # Its last entry (the expiry) is 2 s old soon; then the age rule trims it.
    deadline = asyncio.get_running_loop().time() + 8
    while keys_holding(settings, "Se fue"):
        assert asyncio.get_running_loop().time() < deadline, keys_holding(settings, "Se fue")
        await asyncio.sleep(0.25)
        await sweeper(server).sweep()
    assert keys_holding(settings, item["uri"]) == []
    assert (await api.get(f"/channels/es/items/{item['uri']}")).status_code == 404


async def test_a_correction_of_an_expired_item_is_refused_and_writes_nothing(
    api: httpx.AsyncClient, server: tuple[str, Any], settings: Settings
) -> None:
    item = (await api.post("/channels/en/items", json={"headline": "Brief", "ttl": "1s"})).json()
    await expire(server, settings, "en", item["uri"])
    before = stream_entries(settings)
    for body in ({"headline": "Brief, corrected"}, {"status": "withheld"}, {"ttl": "1h"}):
        r = await api.patch(f"/channels/en/items/{item['uri']}", json=body)
        assert r.status_code == 409 and r.json()["error"] == "expired", r.text
        assert "retry-after" not in r.headers
    await sweeper(server).sweep()
    assert stream_entries(settings) == before  # no new version, no second expiry
    r = await api.get(f"/channels/en/items/{item['uri']}")
    assert len(r.json()["versions"]) == 1


async def test_a_killed_item_answers_409_killed_which_is_final(
    api: httpx.AsyncClient,
) -> None:
    item = (await api.post("/channels/en/items", json={"headline": "Wrong"})).json()
    await api.delete(f"/channels/en/items/{item['uri']}")
    r = await api.patch(f"/channels/en/items/{item['uri']}", json={"headline": "Right"})
    assert r.status_code == 409 and r.json()["error"] == "killed"
    assert "retry-after" not in r.headers


async def test_only_a_concurrent_change_is_retryable() -> None:
    request = Request({"type": "http", "app": None, "headers": []})
    retry = await ticker_error(request, Conflict("someone else changed it"))
    assert retry.status_code == 409 and retry.headers["retry-after"] == "1"
    assert json.loads(bytes(retry.body))["error"] == "conflict"
    for final in (Killed("killed"), Expired("expired")):
        reply = await ticker_error(request, final)
        assert reply.status_code == 409 and "retry-after" not in reply.headers


async def test_corrections_racing_a_kill_write_nothing_after_it(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    for round_ in range(5):
        item = (await api.post("/channels/en/items", json={"headline": f"Race {round_}"})).json()
        path = f"/channels/en/items/{item['uri']}"
        patches = [api.patch(path, json={"headline": f"Race {round_} v{n}"}) for n in range(8)]
        replies = await asyncio.gather(*patches[:4], api.delete(path), *patches[4:])
        kill = replies[4]
        assert kill.status_code == 200 and kill.json()["status"] == "canceled"
        for r in replies[:4] + replies[5:]:
            assert r.status_code == 200 or (
                r.status_code == 409 and r.json()["error"] == "killed"
            ), r.text
        versions = (await api.get(path)).json()["versions"]
        assert versions[-1]["status"] == "canceled"
        assert [v["version"] for v in versions] == list(range(1, len(versions) + 1))
        # In the stream too: nothing about the item after its kill.
        mine = [f for _, f in stream_entries(settings) if f["uri"] == item["uri"]]
        if mine:  # the history holds 10 entries; earlier rounds may be trimmed
            assert mine[-1]["type"] == "remove" and mine[-1]["reason"] == "kill"


ITEM_FIELDS = {
    "uri",
    "channel",
    "version",
    "headline",
    "source",
    "urgency",
    "language",
    "regions",
    "categories",
    "link",
    "status",
    "created_at",
    "updated_at",
    "expires_at",
    "embargoed_until",
    "author",
}


async def test_every_entry_kind_carries_the_documented_fields(
    api: httpx.AsyncClient, server: tuple[str, Any], settings: Settings
) -> None:
    """Read the stream as another service would (docs/streams.md)."""
    soon = (utcnow() + timedelta(seconds=1)).isoformat()
    posted = (await api.post("/channels/en/items", json={"headline": "a", "ttl": "1s"})).json()
    embargoed = (
        await api.post(
            "/channels/en/items", json={"headline": "b", "embargoed_until": soon, "ttl": "3s"}
        )
    ).json()
    path = f"/channels/en/items/{embargoed['uri']}"
    await expire(server, settings, "en", posted["uri"])  # the embargo is released meanwhile
    for body in ({"headline": "b2"}, {"status": "withheld"}, {"status": "usable"}):
        assert (await api.patch(path, json=body)).status_code == 200
    await api.delete(path)
    for n in range(3):  # push-out: live_max_items is 2
        await api.post("/channels/en/items", json={"headline": f"c{n}"})

    kinds: dict[str, list[dict[str, Any]]] = {}
    for entry_id, fields in stream_entries(settings):
        assert fields["v"] == "1"
        assert fields["type"] in ("item", "remove")
        item = json.loads(fields["item"])
        assert item["uri"] == fields["uri"]
        assert set(item) >= ITEM_FIELDS, sorted(ITEM_FIELDS - set(item))
        if fields["type"] == "remove":
            assert fields["reason"] in ("kill", "withhold", "expire")
        else:  # an embargo release says so: the same version as the post
            assert fields.get("reason") in (None, "release")
        kind = fields["type"] + ":" + fields.get("reason", "")
        # Versions made by an entry have no id (the entry ID is theirs); expiries and
        # releases name the version they are about.
        keeps = kind in ("remove:expire", "item:release")
        if keeps:
            assert item["id"] < entry_id
        else:
            assert "id" not in item, (kind, item)
        kinds.setdefault(kind, []).append(item)
    kinds_seen = {"item:", "item:release", "remove:expire", "remove:withhold", "remove:kill"}
    assert set(kinds) == kinds_seen
    assert [i["uri"] for i in kinds["item:release"]] == [embargoed["uri"]]
    assert all("id" in i for i in kinds["remove:expire"])
