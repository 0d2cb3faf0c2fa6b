"""Advisories: ``"kind": "advisory"``, a note for the desk and partners that is never on
the bar. What the API takes and refuses, where the desk finds them, and that they live
and end as any item does. Real Redis, a real uvicorn, the real sweeper. (Every anonymous
read is checked in test_confidentiality.py; the token stream in test_desk_stream.py.)"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.helpers import make_token, post_item
from tests.redis_data import rdb, stream_len
from ticker.settings import Channel, Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"channels": (Channel(name="en", live_max_items=2),)}


@pytest.fixture
def api_token(settings: Settings) -> str:
    return make_token(settings, "chief", ["en"], role="chief")


async def test_advisories_never_take_the_bars_place_and_are_listed_apart(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    first = await post_item(api, "Polls close in Rotterdam")
    second = await post_item(api, "Turnout at 61%", pinned=True)
    notes = [
        await post_item(api, "PM statement expected 18:30", kind="advisory"),
        await post_item(api, "Results not before 22:00", kind="advisory", status="withheld"),
        await post_item(api, "Embargoed figures at 20:00", kind="advisory", embargo="1h"),
    ]
    assert [n["kind"] for n in notes] == ["advisory"] * 3
    body = (await api.get("/channels/en/items")).json()
    # live_max_items is 2: three advisories pushed no headline off, and none is on air.
    assert [i["uri"] for i in body["items"]] == [second["uri"], first["uri"]]
    assert {i["kind"] for i in body["items"]} == {"headline"}
    assert [a["uri"] for a in body["advisories"]] == [n["uri"] for n in reversed(notes)]
    client = rdb(settings)
    try:
        live = {m.decode() for m in client.zrange(f"{settings.key_prefix}:{{en}}:live", 0, -1)}
    finally:
        client.close()
    assert live == {first["uri"], second["uri"]}
    # Held or embargoed, an advisory waits for no air: it is not in the queue.
    assert (await api.get("/channels/en/queue")).json()["items"] == []


async def test_a_kind_that_is_not_one_is_refused_naming_the_field(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    for kind in ("note", "Advisory", None, 1, ["advisory"], {"kind": "advisory"}):
        r = await api.post("/channels/en/items", json={"headline": "News", "kind": kind})
        assert r.status_code == 422, r.text
        message = "Input should be 'headline' or 'advisory'"
        assert r.json()["details"] == [{"field": "kind", "message": message}], kind
    assert stream_len(settings) == 0


async def test_an_advisory_cannot_be_pinned(api: httpx.AsyncClient, settings: Settings) -> None:
    r = await api.post(
        "/channels/en/items", json={"headline": "News", "kind": "advisory", "pinned": True}
    )
    assert r.status_code == 422, r.text
    message = "an advisory is never on the bar, so it cannot be pinned"
    assert r.json()["details"] == [{"field": "pinned", "message": message}]
    assert stream_len(settings) == 0
    note = await post_item(api, "Statement at 18:30", kind="advisory")
    r = await api.patch(f"/channels/en/items/{note['uri']}", json={"pinned": True})
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "pinned", r.text
    r = await api.patch(f"/channels/en/items/{note['uri']}", json={"pinned": False})
    assert r.status_code == 200 and r.json()["changed"] is False  # it already is not
    assert stream_len(settings) == 1


async def test_the_kind_is_fixed_at_the_post(api: httpx.AsyncClient, settings: Settings) -> None:
    note = await post_item(api, "Statement at 18:30", kind="advisory")
    headline = await post_item(api, "Polls close")
    for uri, kind in (
        (note["uri"], "headline"),
        (headline["uri"], "advisory"),
        (note["uri"], None),
    ):
        r = await api.patch(f"/channels/en/items/{uri}", json={"kind": kind, "urgency": 1})
        assert r.status_code == 422, r.text
        (detail,) = r.json()["details"]
        assert detail["field"] == "kind" and "fixed when it is posted" in detail["message"]
    assert stream_len(settings) == 2
    r = await api.get(f"/channels/en/items/{note['uri']}")
    assert r.json()["kind"] == "advisory" and r.json()["version"] == 1


async def test_an_advisory_expires_and_is_killed_like_any_item(
    api: httpx.AsyncClient, server: tuple[str, Any], settings: Settings
) -> None:
    brief = await post_item(api, "Briefing now", kind="advisory", ttl="1s")
    note = await post_item(api, "Statement at 18:30", kind="advisory")
    r = await api.patch(
        f"/channels/en/items/{note['uri']}", json={"headline": "Statement at 19:00"}
    )
    assert r.status_code == 200 and r.json()["version"] == 2
    killed = await api.delete(f"/channels/en/items/{note['uri']}")
    assert killed.status_code == 200 and killed.json()["status"] == "canceled"
    again = await api.delete(f"/channels/en/items/{note['uri']}")
    assert again.status_code == 200 and again.json()["changed"] is False
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    expired = (brief["uri"], "remove", "expire", "advisory")
    while True:
        page = await api.get("/channels/en/items", params={"history": "true"})
        removals = {(h["uri"], h["event"], h["reason"], h["kind"]) for h in page.json()["items"]}
        if expired in removals:
            break
        assert loop.time() < deadline, "the advisory never expired"
        await server[1].state.services.sweeper.sweep()
        await asyncio.sleep(0.1)
    assert (note["uri"], "remove", "kill", "advisory") in removals
    assert (await api.get("/channels/en/items")).json()["advisories"] == []
