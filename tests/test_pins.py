"""Pins: a chief keeps an item on the bar, first, through live_max_items push-out, until
it is unpinned, killed or expires; at most three per channel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
import pytest

from tests.cli_helpers import cli_env, run
from tests.helpers import bearer, make_token
from tests.redis_data import stream_len
from tests.sse import start_reader
from ticker.settings import Channel, Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"channels": (Channel(name="en", live_max_items=5), Channel(name="ar", language="ar"))}


@pytest.fixture
def chief(settings: Settings) -> str:
    return make_token(settings, "chief", ["*"], role="chief")


async def _post(http: httpx.AsyncClient, secret: str, **body: Any) -> dict[str, Any]:
    r = await http.post("/channels/en/items", json=body, headers=bearer(secret))
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_a_pinned_item_survives_25_posts_and_is_listed_first(
    server: tuple[str, Any], token: str, chief: str
) -> None:
    async with httpx.AsyncClient(base_url=server[0], timeout=10) as http:
        pinned = await _post(http, chief, headline="Polls close at 22:00", pinned=True)
        assert pinned["pinned"] is True
        posted = [await _post(http, token, headline=f"update {n}") for n in range(25)]

        on_air = (await http.get("/channels/en/items")).json()["items"]
        assert [i["uri"] for i in on_air] == [pinned["uri"]] + [
            p["uri"] for p in reversed(posted[-5:])
        ]
        assert on_air[0]["pinned"] is True and "author" not in on_air[0]
        history = (await http.get("/channels/en/items", params={"history": "true"})).json()
        removed = {row["uri"] for row in history["items"] if row["event"] == "remove"}
        assert pinned["uri"] not in removed and posted[0]["uri"] in removed

        # A new reader's snapshot leads with the pin.
        reader = start_reader(f"{server[0]}/channels/en/events")
        try:
            await reader.wait_for(lambda r: len(r.of("item")) == 6)
            assert reader.of("item")[0]["uri"] == pinned["uri"]
        finally:
            await reader.close()

        # Unpinned, it is the oldest on the bar: the next post pushes it out.
        r = await http.patch(
            f"/channels/en/items/{pinned['uri']}", json={"pinned": False}, headers=bearer(chief)
        )
        assert r.status_code == 200 and r.json()["pinned"] is False
        await _post(http, token, headline="one more")
        on_air = (await http.get("/channels/en/items")).json()["items"]
        assert pinned["uri"] not in [i["uri"] for i in on_air] and len(on_air) == 5


async def test_a_pinned_item_still_expires_by_its_ttl(server: tuple[str, Any], chief: str) -> None:
    async with httpx.AsyncClient(base_url=server[0], timeout=10) as http:
        pinned = await _post(http, chief, headline="Short-lived pin", pinned=True, ttl="1s")
        reader = start_reader(f"{server[0]}/channels/en/events")
        try:
            expired = {"uri": pinned["uri"], "reason": "expire"}
            await reader.wait_for(lambda r: expired in r.of("remove"), timeout=10)
        finally:
            await reader.close()
        assert (await http.get("/channels/en/items")).json()["items"] == []
        # Its pin is free again: three more fit.
        for n in range(3):
            await _post(http, chief, headline=f"pin {n}", pinned=True)


async def test_only_a_chief_pins_and_unpins(
    server: tuple[str, Any], token: str, chief: str, settings: Settings
) -> None:
    viewer = make_token(settings, "viewer", ["en"], role="viewer")
    async with httpx.AsyncClient(base_url=server[0], timeout=10) as http:
        item = await _post(http, token, headline="Plain")
        pinned = await _post(http, chief, headline="Pinned", pinned=True)
        before = stream_len(settings)
        for secret in (token, viewer):
            r = await http.post(
                "/channels/en/items", json={"headline": "x", "pinned": True}, headers=bearer(secret)
            )
            assert r.status_code == 403, r.text
            for uri, pin in ((item["uri"], True), (pinned["uri"], False)):
                r = await http.patch(
                    f"/channels/en/items/{uri}", json={"pinned": pin}, headers=bearer(secret)
                )
                assert r.status_code == 403, r.text
        assert stream_len(settings) == before
        # An editor may still correct a pinned item; the pin stays.
        r = await http.patch(
            f"/channels/en/items/{pinned['uri']}",
            json={"headline": "Pinned, v2"},
            headers=bearer(token),
        )
        assert r.status_code == 200 and r.json()["pinned"] is True
        r = await http.post(
            "/channels/en/items", json={"headline": "x", "pinned": "yes"}, headers=bearer(chief)
        )
        assert r.status_code == 422 and r.json()["details"][0]["field"] == "pinned"


async def test_a_fourth_pin_and_a_pin_on_a_killed_item_are_409_and_write_nothing(
    server: tuple[str, Any], token: str, chief: str, settings: Settings
) -> None:
    async with httpx.AsyncClient(base_url=server[0], timeout=10) as http:
        pins = [await _post(http, chief, headline=f"pin {n}", pinned=True) for n in range(3)]
        other = await _post(http, token, headline="not pinned")
        before = stream_len(settings)
        r = await http.post(
            "/channels/en/items", json={"headline": "fourth", "pinned": True}, headers=bearer(chief)
        )
        assert r.status_code == 409 and r.json()["error"] == "too_many_pins"
        path = f"/channels/en/items/{other['uri']}"
        r = await http.patch(path, json={"pinned": True}, headers=bearer(chief))
        assert r.status_code == 409 and r.json()["error"] == "too_many_pins"
        assert stream_len(settings) == before
        # Another channel has pins of its own.
        r = await http.post(
            "/channels/ar/items", json={"headline": "pin", "pinned": True}, headers=bearer(chief)
        )
        assert r.status_code == 201

        # A kill frees the pin; a killed item cannot be pinned.
        assert (
            await http.delete(f"/channels/en/items/{pins[0]['uri']}", headers=bearer(chief))
        ).status_code == 200
        r = await http.patch(
            f"/channels/en/items/{pins[0]['uri']}", json={"pinned": True}, headers=bearer(chief)
        )
        assert r.status_code == 409 and r.json()["error"] == "killed"
        r = await http.patch(path, json={"pinned": True}, headers=bearer(chief))
        assert r.status_code == 200 and r.json()["pinned"] is True


async def test_ticker_pin_and_unpin(
    server: tuple[str, Any], token: str, chief: str, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(base_url=server[0], timeout=10) as http:
        item = await _post(http, token, headline="Storm warning")
    (tmp_path / "cli-state").mkdir()
    env = cli_env(tmp_path, TICKER_URL=server[0], TICKER_TOKEN=chief)
    pinned = await anyio.to_thread.run_sync(run, env, "pin", item["uri"])
    assert pinned.returncode == 0 and pinned.stdout.startswith(f"pinned {item['uri']} (v2)")
    listed = await anyio.to_thread.run_sync(run, env, "ls")
    assert listed.stdout.split("\n")[0].split("\t")[5] == "pinned"
    unpinned = await anyio.to_thread.run_sync(run, env, "unpin", item["uri"])
    assert unpinned.returncode == 0 and unpinned.stdout.startswith("unpinned")
    editor = cli_env(tmp_path, TICKER_URL=server[0], TICKER_TOKEN=token)
    refused = await anyio.to_thread.run_sync(run, editor, "pin", item["uri"])
    assert refused.returncode == 4 and "needs a chief token" in refused.stderr
