"""The desk's stream: ``GET /channels/{ch}/events`` with ``Authorization: Bearer``. The
token is checked before anything is sent (a wrong one is refused, never served the public
stream), the stream carries every entry in the desk's view (authors, kinds, held,
embargoed and advisories), its opening and a resume included, an anonymous reader's bytes
are unchanged beside it, and a token revoked meanwhile loses the stream. Real Redis, a
real uvicorn, on both doors: a token's stream goes to the app from the protocol's door
too (``rules.judge``, rule 7)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.helpers import make_token, post_item, serve_app
from tests.sse import connected, start_reader
from ticker.domain.models import DESK_ONLY, Item, utcnow
from ticker.http.front import Front
from ticker.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["front", "asgi"])
async def server(request: pytest.FixtureRequest, settings: Settings) -> Any:
    """``front``: as ``ticker serve`` takes connections (the protocol hands a token's
    stream to the app); ``asgi``: plain uvicorn, the app's door alone."""
    http = {"front": Front, "asgi": "httptools"}[request.param]
    async with serve_app(settings, http=http) as running:
        yield running


@pytest.fixture
async def front(settings: Settings) -> Any:
    """The protocol's door alone, for what does not depend on the door."""
    async with serve_app(settings, http=Front) as running:
        yield running


async def test_a_stream_request_with_a_wrong_token_is_refused_not_served_the_public_view(
    server: tuple[str, Any], settings: Settings, token: str
) -> None:
    other = make_token(settings, "es-desk", ["es"], role="viewer")
    ops = make_token(settings, "scraper", ["*"], role="ops")
    refused = {
        "Bearer tk_wrong": (401, "unauthorized"),
        "": (401, "unauthorized"),
        "Basic eDp5": (401, "unauthorized"),
        f"Bearer {other}": (403, "forbidden"),
        f"Bearer {ops}": (403, "forbidden"),
    }
    async with httpx.AsyncClient(base_url=server[0], timeout=5) as http:
        for authorization, (status, code) in refused.items():
            r = await http.get("/channels/en/events", headers={"Authorization": authorization})
            assert (r.status_code, r.json()["error"]) == (status, code), authorization
            assert r.headers["content-type"] == "application/json"
            assert "event:" not in r.text and "retry:" not in r.text
            if status == 401:
                assert r.headers["www-authenticate"] == 'Bearer realm="ticker"'
        # A good token's stream: the desk's, never cached, never read cross-site.
        good = {"Authorization": f"Bearer {token}", "Origin": "https://elsewhere.example"}
        async with http.stream("GET", "/channels/en/events", headers=good) as r:
            assert r.status_code == 200
            assert r.headers["cache-control"] == "private, no-store"
            assert r.headers["vary"] == "Authorization"
            assert "access-control-allow-origin" not in r.headers
        # Rules 1-6 first, as for any stream request.
        r = await http.get("/channels/en/events?max_urgency=0", headers={"Authorization": ""})
        assert r.status_code == 422 and r.json()["details"][0]["field"] == "max_urgency"


async def test_the_desk_stream_carries_every_entry_and_the_public_one_is_unchanged(
    server: tuple[str, Any], api: httpx.AsyncClient, token: str
) -> None:
    later = (utcnow() + timedelta(hours=1)).isoformat()
    before = {
        "on_air": await post_item(api, "Polls close", story="vote-2027"),
        "advisory": await post_item(api, "Results not before 22:00", kind="advisory"),
        "held": await post_item(api, "Turnout figure, unchecked", status="withheld"),
        "embargoed": await post_item(api, "Exit poll", embargoed_until=later),
    }
    events = f"{server[0]}/channels/en/events?reach=off"
    desk = await connected(start_reader(events, headers={"Authorization": f"Bearer {token}"}))
    public = await connected(start_reader(f"{server[0]}/channels/en/events"))
    try:
        # The opening: every item the desk holds now, in its view, oldest change first.
        await desk.wait_for(lambda r: len(r.of("item")) == 4)
        opening = desk.of("item")
        assert [i["uri"] for i in opening] == [i["uri"] for i in before.values()]
        assert opening == list(before.values())  # every field, author, kind and story too
        await public.wait_for(lambda r: len(r.of("item")) == 1)

        note = await post_item(api, "PM statement expected 18:30", kind="advisory")
        path = f"/channels/en/items/{note['uri']}"
        corrected = (await api.patch(path, json={"headline": "PM statement at 19:00"})).json()
        killed = (await api.delete(path)).json()
        held = (
            await api.patch(
                f"/channels/en/items/{before['on_air']['uri']}", json={"status": "withheld"}
            )
        ).json()
        marker = await post_item(api, "Polls closed everywhere")
        await desk.wait_for(lambda r: any(marker["uri"] in e.data for e in r.events))
        await public.wait_for(lambda r: any(marker["uri"] in e.data for e in r.events))

        live = [(e.event, json.loads(e.data)) for e in desk.events[4:]]
        assert [(kind, data["uri"]) for kind, data in live] == [
            ("item", note["uri"]),
            ("item", note["uri"]),
            ("remove", note["uri"]),
            ("remove", before["on_air"]["uri"]),
            ("item", marker["uri"]),
        ]
        assert live[0][1] == note and live[1][1] == {
            k: v for k, v in corrected.items() if k != "changed"
        }
        assert live[2][1] == {
            "uri": note["uri"],
            "reason": "kill",
            "item": {k: v for k, v in killed.items() if k != "changed"},
        }
        assert live[3][1]["reason"] == "withhold" and live[3][1]["item"]["author"] == "editor"
        assert live[3][1]["item"]["version"] == held["version"]
        assert {
            data["item"]["kind"] if kind == "remove" else data["kind"] for kind, data in live
        } == {
            "advisory",
            "headline",
        }

        # The anonymous reader, beside it: what it always got, to the byte.
        assert [(e.event, e.id) for e in public.events] == [
            ("item", before["on_air"]["id"]),
            ("remove", held["id"]),
            ("item", marker["id"]),
        ]
        for e in public.of("item"):
            desk_view = next(i for i in [*opening, *(d for _, d in live)] if i.get("id") == e["id"])
            assert (
                json.dumps(e, ensure_ascii=False, separators=(",", ":"))
                == Item.model_validate(desk_view).public_json()
            )
            assert not set(e) & DESK_ONLY
        assert public.of("remove") == [{"uri": before["on_air"]["uri"], "reason": "withhold"}]
    finally:
        await desk.close()
        await public.close()

    # A resume: every entry after the desk's last id, in its view (the advisory's too).
    first_id = before["on_air"]["id"]
    again = await connected(
        start_reader(
            events, headers={"Authorization": f"Bearer {token}", "Last-Event-ID": first_id}
        )
    )
    try:
        await again.wait_for(lambda r: any(marker["uri"] in e.data for e in r.events))
        assert "reset" not in [e.event for e in again.events]
        resumed = [json.loads(e.data) for e in again.events]
        assert [r["uri"] for r in resumed[:3]] == [
            before[s]["uri"] for s in ("advisory", "held", "embargoed")
        ]
        assert resumed[0]["kind"] == "advisory" and resumed[0]["author"] == "editor"
    finally:
        await again.close()


async def test_a_revoked_token_loses_its_stream_at_the_next_heartbeat(
    front: tuple[str, Any], settings: Settings
) -> None:
    server = front
    viewer = make_token(settings, "night-viewer", ["en"], role="viewer")
    headers = {"Authorization": f"Bearer {viewer}"}
    desk = await connected(start_reader(f"{server[0]}/channels/en/events", headers=headers))
    try:
        assert await server[1].state.services.tokens.revoke("night-viewer")
        # heartbeat_s is 1 in the tests: the check comes with the next one.
        await desk.wait_ended(settings.retry_ms)  # as any stream the server ends
    finally:
        await desk.close()
    async with httpx.AsyncClient(base_url=server[0], timeout=5) as http:
        r = await http.get("/channels/en/events", headers=headers)
        assert r.status_code == 401


async def test_the_desks_stream_is_never_counted_in_reach(
    front: tuple[str, Any], token: str
) -> None:
    server = front
    async with httpx.AsyncClient(
        base_url=server[0], timeout=10, headers={"Authorization": f"Bearer {token}"}
    ) as api:
        await _reach_of_one_anonymous_reader(server, api, token)


async def _reach_of_one_anonymous_reader(
    server: tuple[str, Any], api: httpx.AsyncClient, token: str
) -> None:
    first = await post_item(api, "Bridge closed")
    hub = server[1].state.services.hub
    url = f"{server[0]}/channels/en/events"
    desk = await connected(start_reader(url, headers={"Authorization": f"Bearer {token}"}))
    public = await connected(start_reader(url))
    try:
        for reader in (desk, public):  # the opening
            await reader.wait_for(lambda r: len(r.of("item")) == 1)
        second = await post_item(api, "Bridge reopened")
        for reader in (desk, public):  # live
            await reader.wait_for(lambda r: len(r.of("item")) == 2)
        assert hub.subscriber_count("en") == 2  # both are readers of this process
        await hub.reach.flush()
        for item in (first, second):
            r = await api.get(f"/channels/en/items/{item['uri']}")
            assert r.json()["reach"] == 1  # the anonymous reader only
    finally:
        await desk.close()
        await public.close()
