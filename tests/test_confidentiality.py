"""Two audiences, one rule: anonymous readers see what is or was on air, nothing else; a
token for the channel sees the desk's view. Checked for every state an item can be in
(on air, embargoed, held, killed, expired, purged, waiting for sign-off, rejected, and
advisories, which are never on air: live, corrected, killed, expired), on every read,
against the whole response body, not one field; on both stream doors: the native front
(a real ``ticker serve``) and the app path (plain ASGI sends, ``server``)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.helpers import TickerProcess, make_token, serve_app
from tests.sse import start_reader
from ticker.domain.models import utcnow
from ticker.settings import Channel, Settings

pytestmark = pytest.mark.anyio

STATES = (
    "on_air",
    "embargoed",
    "held",
    "held_at_post",
    "killed",
    "expired",
    "purged",
    "pending",
    "pending_embargoed",
    "rejected",
    "advisory",
    "advisory_killed",
    "advisory_expired",
)
ADVISORIES = {"advisory", "advisory_killed", "advisory_expired"}
# Readable by anonymous readers as a single item (the rest answer 404).
PUBLIC_ITEMS = {"on_air", "expired"}
# Posted by a contributor (waiting for sign-off); the rest by the editor.
CONTRIBUTED = {"pending", "pending_embargoed", "rejected"}


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"channels": (Channel(name="en", item_ttl=timedelta(minutes=30)),)}


@pytest.fixture
async def server(settings: Settings) -> Any:
    """The app path (every stream through ASGI sends); ``ticker_server`` is the front."""
    async with serve_app(settings, http="httptools") as running:
        yield running


def headline(state: str) -> str:
    # Unique per test run, so a leak cannot hide behind another test's data.
    return f"SECRET-{state}-{uuid.uuid4().hex[:8]}"


async def make_states(
    base: str, editor: str, chief: str, contributor: str, *, sweep: Any = None
) -> dict[str, dict[str, Any]]:
    """One item in each state, made through the real API."""
    made: dict[str, dict[str, Any]] = {}
    auth = {"Authorization": f"Bearer {editor}"}
    async with httpx.AsyncClient(base_url=base, headers=auth, timeout=10) as api:

        async def post(state: str, **fields: Any) -> dict[str, Any]:
            by = {"Authorization": f"Bearer {contributor}"} if state in CONTRIBUTED else auth
            body = {"headline": headline(state), **fields}
            r = await api.post("/channels/en/items", json=body, headers=by)
            assert r.status_code == 201, r.text
            made[state] = r.json()
            return made[state]

        expired = await post("expired", ttl="1s")
        advisory_expired = await post("advisory_expired", ttl="1s", kind="advisory")
        await post("on_air")
        advisory = await post("advisory", kind="advisory")
        r = await api.patch(f"/channels/en/items/{advisory['uri']}", json={"source": "Desk"})
        assert r.status_code == 200 and r.json()["changed"], r.text
        advisory_killed = await post("advisory_killed", kind="advisory")
        r = await api.delete(f"/channels/en/items/{advisory_killed['uri']}")
        assert r.status_code == 200
        later = (utcnow() + timedelta(hours=1)).isoformat()
        await post("embargoed", embargoed_until=later)
        held = await post("held")
        r = await api.patch(f"/channels/en/items/{held['uri']}", json={"status": "withheld"})
        assert r.status_code == 200
        await post("held_at_post", status="withheld")
        await post("pending")
        await post("pending_embargoed", embargoed_until=later)
        rejected = await post("rejected")
        r = await api.post(
            f"/channels/en/items/{rejected['uri']}/reject", json={"note": headline("note")}
        )
        assert r.status_code == 200, r.text
        killed = await post("killed")
        assert (await api.delete(f"/channels/en/items/{killed['uri']}")).status_code == 200
        purged = await post("purged")
        r = await api.post(
            f"/channels/en/items/{purged['uri']}/purge",
            json={"reason": "court order"},
            headers={"Authorization": f"Bearer {chief}"},
        )
        assert r.status_code == 200, r.text
        # The expired item's second runs out, and the sweeper takes it off the ticker.
        deadline = asyncio.get_running_loop().time() + 5
        while True:
            r = await api.get("/channels/en/items")  # the desk's view: advisories too
            if expired["uri"] not in r.text and advisory_expired["uri"] not in r.text:
                break
            assert asyncio.get_running_loop().time() < deadline, "the item never expired"
            if sweep is not None:
                await sweep()
            await asyncio.sleep(0.1)
    return made


def secrets_in(text: str, made: dict[str, dict[str, Any]], states: set[str]) -> list[str]:
    return [s for s in states if made[s]["headline"] in text]


def advisories_in(text: str, made: dict[str, dict[str, Any]]) -> list[str]:
    """Advisories named in an anonymous reply by text or by uri: not even a removal of
    one reaches anonymous readers (none ever saw it)."""
    names = [s for s in made if s.startswith("advisory")]
    return [s for s in names if made[s]["headline"] in text or made[s]["uri"] in text]


async def check_views(base: str, made: dict[str, dict[str, Any]], token: str) -> None:
    hidden = set(STATES) - PUBLIC_ITEMS
    desk = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        # The items on air.
        r = await http.get("/channels/en/items")
        assert r.status_code == 200
        assert [i["headline"] for i in r.json()["items"]] == [made["on_air"]["headline"]]
        assert "author" not in r.text
        assert "Authorization" in r.headers["vary"]
        assert advisories_in(r.text, made) == [] and "advisories" not in r.json()
        r = await http.get("/channels/en/items", headers=desk)
        assert r.json()["items"][0]["author"] == "editor"
        assert r.headers["cache-control"] == "private, no-store"
        # The desk lists the live advisory apart from what is on air, with its kind.
        assert [i["uri"] for i in r.json()["items"]] == [made["on_air"]["uri"]]
        assert [(a["uri"], a["kind"], a["version"]) for a in r.json()["advisories"]] == [
            (made["advisory"]["uri"], "advisory", 2)
        ]

        # One item at a time.
        for state, item in made.items():
            r = await http.get(f"/channels/en/items/{item['uri']}")
            if state in PUBLIC_ITEMS:
                assert r.status_code == 200, state
                assert "versions" not in r.json() and "author" not in r.text, state
                assert r.headers["access-control-allow-origin"] == "*"
            else:
                assert r.status_code == 404, state
                assert item["headline"] not in r.text, state
                assert r.json()["error"] == "not_found"
                assert r.json() == (await http.get("/channels/en/items/no-such-item")).json() | {
                    "message": f"no item {item['uri']!r} in channel 'en'"
                }, state
            r = await http.get(f"/channels/en/items/{item['uri']}", headers=desk)
            if state == "purged":
                assert r.status_code == 404
                assert item["headline"] not in r.text
            else:
                assert r.status_code == 200, state
                body = r.json()
                assert body["author"] == item["author"] and body["versions"], state

        # The history.
        r = await http.get("/channels/en/items", params={"history": "true", "limit": 500})
        assert r.status_code == 200
        assert secrets_in(r.text, made, hidden) == []
        assert advisories_in(r.text, made) == []
        assert sorted(secrets_in(r.text, made, PUBLIC_ITEMS)) == sorted(PUBLIC_ITEMS)
        assert "author" not in r.text and "kind" not in r.text
        removed = {(i["uri"], i["reason"]) for i in r.json()["items"] if i["event"] == "remove"}
        assert (made["killed"]["uri"], "kill") in removed
        assert (made["held"]["uri"], "withhold") in removed
        r = await http.get(
            "/channels/en/items", params={"history": "true", "limit": 500}, headers=desk
        )
        assert sorted(secrets_in(r.text, made, set(STATES))) == sorted(set(STATES) - {"purged"})
        authors = {i["author"] for i in r.json()["items"] if i["event"] == "item"}
        assert authors == {"editor", "contributor"}
        kinds = {i["uri"]: i["kind"] for i in r.json()["items"]}
        assert {kinds[made[s]["uri"]] for s in ADVISORIES} == {"advisory"}
        assert kinds[made["on_air"]["uri"]] == "headline"
        # Sign-off is the desk's: no note, no approver, no status of it reaches the public.
        r = await http.get("/channels/en/items", params={"history": "true", "limit": 500})
        for word in ("pending", "rejected", "rejection_note", made["rejected"]["uri"]):
            assert word not in r.text, word

    # Server-sent events: a new reader, and a reader replaying from the first entry on
    # (the expired item's post: everything after it, the killed and held items' too).
    for headers in ({}, {"Last-Event-ID": made["expired"]["id"]}):
        reader = start_reader(f"{base}/channels/en/events", headers=headers)
        try:
            await reader.wait_for(lambda r: any(e.event == "item" for e in r.events))
            await asyncio.sleep(0.3)  # anything else the replay would send
            if not headers:  # live: an advisory posted, corrected and killed meanwhile
                await live_advisory(base, token, made)
                marker = made["live_marker"]["uri"]
                await reader.wait_for(lambda r, m=marker: any(m in e.data for e in r.events))
            text = "\n".join(e.data for e in reader.events)
            assert secrets_in(text, made, hidden) == []
            assert advisories_in(text, made) == []
            assert "author" not in text and "kind" not in text
            assert "pending" not in text and "rejected" not in text
            assert made["on_air"]["headline"] in text
            if headers:  # an exact replay, not a reset: the removals come through
                assert "reset" not in [e.event for e in reader.events]
                assert {"uri": made["killed"]["uri"], "reason": "kill"} in reader.of("remove")
        finally:
            await reader.close()


async def live_advisory(base: str, token: str, made: dict[str, dict[str, Any]]) -> None:
    """While a reader is connected: an advisory posted, corrected and killed, then a
    headline (the marker the reader waits for: everything before it has been fanned out)."""
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10
    ) as api:
        for state, fields in (("advisory_live", {"kind": "advisory"}), ("live_marker", {})):
            r = await api.post("/channels/en/items", json={"headline": headline(state), **fields})
            assert r.status_code == 201, r.text
            made[state] = r.json()
            if state == "advisory_live":
                path = f"/channels/en/items/{made[state]['uri']}"
                assert (await api.patch(path, json={"urgency": 1})).status_code == 200
                assert (await api.delete(path)).status_code == 200


async def test_anonymous_readers_see_only_what_is_or_was_on_air(
    server: tuple[str, Any], token: str, settings: Settings
) -> None:
    chief = make_token(settings, "chief", ["en"], role="chief")
    contributor = make_token(settings, "contributor", ["en"], role="contributor")
    sweeper = server[1].state.services.sweeper
    made = await make_states(server[0], token, chief, contributor, sweep=sweeper.sweep)
    await check_views(server[0], made, token)


async def test_the_two_views_hold_on_a_real_ticker_serve(
    ticker_server: TickerProcess, settings: Settings
) -> None:
    editor = make_token(settings, "editor", ["*"])
    chief = make_token(settings, "chief", ["en"], role="chief")
    contributor = make_token(settings, "contributor", ["en"], role="contributor")
    made = await make_states(ticker_server.url, editor, chief, contributor)
    await check_views(ticker_server.url, made, editor)


async def test_a_wrong_token_on_a_read_is_refused_not_served_the_public_view(
    server: tuple[str, Any], settings: Settings
) -> None:
    other = make_token(settings, "es-desk", ["es"])
    async with httpx.AsyncClient(base_url=server[0], timeout=10) as http:
        r = await http.get("/channels/en/items", headers={"Authorization": "Bearer tk_wrong"})
        assert r.status_code == 401 and r.json()["error"] == "unauthorized"
        r = await http.get("/channels/en/items", headers={"Authorization": f"Bearer {other}"})
        assert r.status_code == 403 and r.json()["error"] == "forbidden"
        r = await http.get("/channels/en/items/nope", headers={"Authorization": "Basic x"})
        assert r.status_code == 401


async def test_sse_items_carry_no_author(server: tuple[str, Any], token: str) -> None:
    reader = start_reader(f"{server[0]}/channels/en/events")
    try:
        await reader.wait_for(lambda r: r.connected.is_set())
        await asyncio.sleep(0.2)
        async with httpx.AsyncClient(base_url=server[0], timeout=10) as http:
            r = await http.post(
                "/channels/en/items",
                json={"headline": "Bridge closed"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert r.status_code == 201
        await reader.wait_for(lambda r: len(r.of("item")) == 1)
        (item,) = reader.of("item")
        assert item["headline"] == "Bridge closed" and "author" not in item
        assert json.loads(r.text)["author"] == "editor"  # the writer's own reply has it
    finally:
        await reader.close()
