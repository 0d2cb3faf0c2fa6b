"""Entries that other services write into a channel's stream are input too: whatever they
hold (bytes that are not UTF-8, JSON that is not an item, nesting 100,000 deep, lone
surrogates, missing or huge fields), the channel goes on: live readers get the next good
item, new readers the current items, resumes and history pages go past the bad entry."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

import httpx
import pytest
import redis

from tests.sse import start_reader
from ticker.domain.models import utcnow
from ticker.settings import Settings

pytestmark = pytest.mark.anyio


def _item(**changes: Any) -> dict[str, Any]:
    now = utcnow()
    return {
        "uri": "other",
        "channel": "en",
        "version": 1,
        "headline": "from elsewhere",
        "language": "en",
        "created_at": now.isoformat(),
        "updated_at": now.isoformat(),
        "expires_at": (now + timedelta(minutes=5)).isoformat(),
        "author": "other-service",
        **changes,
    }


def poison() -> list[dict[Any, Any]]:
    """One entry of each kind a careless (or hostile) writer can leave in the stream."""
    deep = "[" * 100_000 + "]" * 100_000
    return [
        {"v": "1", "type": "item", "uri": "x", "item": b"\xff\xfe not UTF-8 \xc3"},
        {
            "v": "1",
            "type": "item",
            "uri": "x",
            "item": json.dumps({"headline": "caf\xe9"}, ensure_ascii=False).encode("latin-1"),
        },
        {b"\xff\xfe": b"\xff", "type": "item"},
        {"v": "1", "type": "item", "uri": "x", "item": "[1, 2, 3]"},
        {"v": "1", "type": "item", "uri": "x", "item": '"a string"'},
        {"v": "1", "type": "item", "uri": "x", "item": deep},
        {"v": "1", "type": "item", "uri": "x", "item": '{"a": ' * 50_000 + "1" + "}" * 50_000},
        {
            "v": "1",
            "type": "item",
            "uri": "x",
            "item": json.dumps(_item(headline="lone \ud800 surrogate")),
        },
        {
            "v": "1",
            "type": "item",
            "uri": "x",
            "item": json.dumps(_item(created_at="0001-01-01T00:00:00+01:00")),
        },
        {"v": "1", "type": "item"},
        {"v": "1", "type": "remove"},
        {"v": "1", "type": "remove", "uri": "u" * 5000, "reason": "kill"},
        {"v": "1", "type": "item", "uri": "x", "item": json.dumps(_item(headline="h" * 2_000_000))},
        {"v": "1", "type": "item", "uri": "x", "item": "not json at all"},
    ]


def write_poison(settings: Settings, channel: str = "en") -> list[str]:
    assert settings.redis_url is not None
    client = redis.Redis.from_url(settings.redis_url.get_secret_value())
    try:
        key = f"{settings.key_prefix}:{{{channel}}}:events"
        return [str(client.xadd(key, fields), "ascii") for fields in poison()]  # type: ignore[arg-type]
    finally:
        client.close()


async def test_a_channel_goes_on_past_entries_that_are_not_items(
    server: tuple[str, Any], settings: Settings, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"{server[0]}/channels/en/events"
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server[0], headers=auth, timeout=10) as http:
        first = (await http.post("/channels/en/items", json={"headline": "before"})).json()
        live = start_reader(url)
        try:
            await live.wait_for(lambda r: len(r.of("item")) == 1)
            bad = write_poison(settings)
            second = (await http.post("/channels/en/items", json={"headline": "after"})).json()

            # The connected reader gets the next good item, and nothing of the bad ones.
            await live.wait_for(lambda r: len(r.of("item")) == 2, timeout=10)
            assert [i["headline"] for i in live.of("item")] == ["before", "after"]

            # A new reader gets the current items; a resume spanning the bad entries gets
            # exactly the good item after them.
            fresh = start_reader(url)
            resumed = start_reader(url, headers={"Last-Event-ID": first["id"]})
            from_bad = start_reader(url, headers={"Last-Event-ID": bad[3]})
            try:
                await fresh.wait_for(lambda r: len(r.of("item")) == 2)
                assert [i["id"] for i in fresh.of("item")] == [first["id"], second["id"]]
                await resumed.wait_for(lambda r: len(r.of("item")) >= 1)
                await from_bad.wait_for(lambda r: len(r.of("item")) >= 1)
                assert [e.event for e in resumed.events] == ["item"]
                assert [i["id"] for i in resumed.of("item")] == [second["id"]]
                assert [i["id"] for i in from_bad.of("item")] == [second["id"]]
            finally:
                await fresh.close()
                await resumed.close()
                await from_bad.close()

            # History: every page 200, and the cursor goes on past pages of bad entries.
            seen: list[str] = []
            before: str | None = None
            pages = 0
            while True:
                params = {"history": "true", "limit": "3", **({"before": before} if before else {})}
                r = await http.get("/channels/en/items", params=params)
                assert r.status_code == 200, r.text
                body = r.json()
                seen += [i["id"] for i in body["items"]]
                pages += 1
                before = body["next_before"]
                if before is None:
                    break
                assert pages < 20
            assert seen == [second["id"], first["id"]]
            assert pages >= len(bad) // 3

            # A page made only of bad entries still points past them.
            r = await http.get(
                "/channels/en/items", params={"history": "true", "limit": "2", "before": bad[-1]}
            )
            assert r.status_code == 200, r.text
            assert r.json()["items"] == []
            assert r.json()["next_before"] == bad[-3]

            # Still live after all that.
            third = (await http.post("/channels/en/items", json={"headline": "later"})).json()
            await live.wait_for(lambda r: len(r.of("item")) == 3, timeout=10)
            assert live.of("item")[-1]["id"] == third["id"]
        finally:
            await live.close()
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    skips = [r.getMessage() for r in caplog.records if "skipping malformed" in r.getMessage()]
    assert len(skips) == len(set(skips)), "one warning per entry per process"


@pytest.mark.parametrize("settings_overrides", [{"read_block_ms": 100}])
async def test_bad_entries_in_a_channel_do_not_log_redis_outages(
    server: tuple[str, Any], settings: Settings, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The reader of a channel with bad entries neither retries nor reports Redis as back."""
    caplog.set_level(logging.INFO)
    reader = start_reader(f"{server[0]}/channels/en/events")
    try:
        await reader.wait_for(lambda r: r.status == 200)
        write_poison(settings)
        async with httpx.AsyncClient(base_url=server[0], timeout=10) as http:
            r = await http.post(
                "/channels/en/items",
                json={"headline": "good"},
                headers={"Authorization": f"Bearer {token}"},
            )
        await reader.wait_for(lambda r: len(r.of("item")) == 1, timeout=10)
    finally:
        await reader.close()
    assert r.status_code == 201
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if "Redis is back" in m or "retrying" in m], messages


async def test_new_readers_get_the_current_items_past_a_bad_one_in_the_items_hash(
    server: tuple[str, Any], settings: Settings, token: str
) -> None:
    """Only ticker writes the items hash; if something else does, new readers still get
    every good current item."""
    async with httpx.AsyncClient(base_url=server[0], timeout=10) as http:
        good = (
            await http.post(
                "/channels/en/items",
                json={"headline": "good"},
                headers={"Authorization": f"Bearer {token}"},
            )
        ).json()
    assert settings.redis_url is not None
    client = redis.Redis.from_url(settings.redis_url.get_secret_value())
    base = f"{settings.key_prefix}:{{en}}"
    for n, value in enumerate([b"\xff\xfe", b"[1]", b"{}", b"[" * 100_000]):
        client.hset(f"{base}:items", f"bad{n}", value)
        client.zadd(f"{base}:live", {f"bad{n}": 1})
    client.close()
    reader = start_reader(f"{server[0]}/channels/en/events")
    try:
        await reader.wait_for(lambda r: len(r.of("item")) >= 1)
        assert [i["id"] for i in reader.of("item")] == [good["id"]]
    finally:
        await reader.close()
    async with httpx.AsyncClient(base_url=server[0], timeout=10) as http:
        r = await http.get("/channels/en/items")
    assert r.status_code == 200
    assert [i["id"] for i in r.json()["items"]] == [good["id"]]
