"""Changes and versions: an item's ETag is its version, a change made from an older version
is refused with the item as it is now (409 ``stale``), and a change that changes nothing
writes nothing. Real Redis, a real uvicorn."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.helpers import make_token, post_item
from tests.redis_data import stream_len
from ticker.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"write_burst": 1000}  # the race below writes fast


async def post(api: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    return await post_item(api, body.pop("headline", "Death toll rises to three"), **body)


async def version_of(api: httpx.AsyncClient, uri: str) -> dict[str, Any]:
    r = await api.get(f"/channels/en/items/{uri}")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_item_reads_and_change_replies_carry_the_version_as_a_strong_etag(
    api: httpx.AsyncClient, server: tuple[str, Any]
) -> None:
    item = await post(api)
    path = f"/channels/en/items/{item['uri']}"
    assert (await api.get(path)).headers["etag"] == '"v1"'
    corrected = await api.patch(path, json={"headline": "Death toll rises to four"})
    assert corrected.headers["etag"] == '"v2"'
    assert corrected.json()["version"] == 2 and corrected.json()["changed"] is True
    # Anonymous readers cannot change an item: their view carries no ETag.
    async with httpx.AsyncClient(base_url=server[0], timeout=10) as anonymous:
        public = await anonymous.get(path)
    assert public.status_code == 200 and "etag" not in public.headers
    killed = await api.delete(path)
    assert killed.headers["etag"] == '"v3"' and killed.json()["changed"] is True


async def test_a_stale_correction_is_409_with_the_item_as_it_is_now_and_writes_nothing(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    item = await post(api)
    path = f"/channels/en/items/{item['uri']}"
    chief = await api.patch(path, json={"headline": "Death toll rises to four"})
    assert chief.status_code == 200
    before = stream_len(settings)
    for stale in (
        {"headers": {"If-Match": '"v1"'}, "json": {"headline": "Three, hospital says"}},
        {"json": {"headline": "Three, hospital says", "base_version": 1}},
    ):
        r = await api.patch(path, **stale)
        assert r.status_code == 409, r.text
        body = r.json()
        assert body["error"] == "stale"
        assert "v2" in body["message"]
        assert body["item"]["version"] == 2
        assert body["item"]["headline"] == "Death toll rises to four"
        assert body["item"]["author"] == "editor"  # the desk's view
        assert "retry-after" not in r.headers  # not a blind retry: look first
    assert stream_len(settings) == before
    now = await version_of(api, item["uri"])
    assert (now["version"], now["headline"]) == (2, "Death toll rises to four")


async def test_a_change_from_the_current_version_is_written(api: httpx.AsyncClient) -> None:
    item = await post(api)
    path = f"/channels/en/items/{item['uri']}"
    r = await api.patch(path, json={"headline": "Four"}, headers={"If-Match": '"v1"'})
    assert r.status_code == 200 and r.json()["version"] == 2
    both = {"headline": "Five", "base_version": 2}
    r = await api.patch(path, json=both, headers={"If-Match": '"v2"'})
    assert r.status_code == 200 and r.json()["version"] == 3
    r = await api.patch(path, json={"headline": "Six"}, headers={"If-Match": '"v1", "v3"'})
    assert r.status_code == 200 and r.json()["version"] == 4
    r = await api.patch(path, json={"headline": "Seven"}, headers={"If-Match": "*"})
    assert r.status_code == 200 and r.json()["version"] == 5


@pytest.mark.parametrize(
    ("if_match", "body", "code", "said"),
    [
        ("v1", {}, "bad_if_match", 'such as "v3"'),
        ("1", {}, "bad_if_match", 'such as "v3"'),
        ('"1"', {}, "bad_if_match", 'such as "v3"'),
        ('"abc"', {}, "bad_if_match", "If-Match"),
        ("", {}, "bad_if_match", "If-Match"),
        ('W/"v1"', {}, "bad_if_match", "weak ETag"),
        ('"v1"', {"base_version": 2}, "precondition_mismatch", "disagree"),
    ],
)
async def test_a_bad_precondition_is_400_naming_the_header_and_writes_nothing(
    api: httpx.AsyncClient, settings: Settings, if_match: str, body: Any, code: str, said: str
) -> None:
    item = await post(api)
    before = stream_len(settings)
    r = await api.patch(
        f"/channels/en/items/{item['uri']}",
        json={"headline": "Four", **body},
        headers={"If-Match": if_match},
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"] == code
    assert said in r.json()["message"] and "If-Match" in r.json()["message"]
    assert stream_len(settings) == before
    r = await api.delete(f"/channels/en/items/{item['uri']}", headers={"If-Match": if_match})
    if not body:  # a kill reads only the header
        assert r.status_code == 400 and r.json()["error"] == code
        assert (await version_of(api, item["uri"]))["status"] == "usable"


@pytest.mark.parametrize("base_version", [0, -1, "2", 1.5, True])
async def test_a_bad_base_version_is_422(api: httpx.AsyncClient, base_version: Any) -> None:
    item = await post(api)
    r = await api.patch(
        f"/channels/en/items/{item['uri']}", json={"headline": "x", "base_version": base_version}
    )
    assert r.status_code == 422
    (detail,) = r.json()["details"]
    assert detail["field"] == "base_version" and detail["message"] != "unknown field"


async def test_holds_and_kills_made_from_an_older_version_are_refused(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    item = await post(api)
    path = f"/channels/en/items/{item['uri']}"
    await api.patch(path, json={"headline": "Four"})
    before = stream_len(settings)
    hold = await api.patch(path, json={"status": "withheld"}, headers={"If-Match": '"v1"'})
    assert hold.status_code == 409 and hold.json()["error"] == "stale"
    kill = await api.delete(path, headers={"If-Match": '"v1"'})
    assert kill.status_code == 409 and kill.json()["item"]["status"] == "usable"
    assert stream_len(settings) == before
    kill = await api.delete(path, headers={"If-Match": '"v2"'})
    assert kill.status_code == 200 and kill.json()["status"] == "canceled"
    # Killed is final: a kill again, from any version, changes nothing and says so.
    again = await api.delete(path, headers={"If-Match": '"v1"'})
    assert again.status_code == 200
    assert again.json()["changed"] is False and again.json()["version"] == 3
    release = await api.patch(path, json={"status": "usable"}, headers={"If-Match": '"v3"'})
    assert release.status_code == 409 and release.json()["error"] == "killed"


async def test_concurrent_changes_from_one_version_write_exactly_one(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    item = await post(api)
    path = f"/channels/en/items/{item['uri']}"
    replies = await asyncio.gather(
        *(
            api.patch(path, json={"headline": f"Toll: {n}"}, headers={"If-Match": '"v1"'})
            for n in range(8)
        )
    )
    statuses = sorted(r.status_code for r in replies)
    assert statuses == [200] + [409] * 7, [r.text for r in replies]
    assert {r.json()["error"] for r in replies if r.status_code == 409} == {"stale"}
    (winner,) = [r.json() for r in replies if r.status_code == 200]
    now = await version_of(api, item["uri"])
    assert (now["version"], now["headline"]) == (2, winner["headline"])
    assert len(now["versions"]) == 2


async def test_a_change_that_changes_nothing_writes_nothing(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    item = await post(api, source="Hospital")
    path = f"/channels/en/items/{item['uri']}"
    before = stream_len(settings)
    for body in (
        {"status": "usable"},  # a release of an item on air
        {"headline": "Death toll rises to three", "source": "Hospital"},  # the same text
        {"urgency": item["urgency"], "regions": []},
        {"expires_at": item["expires_at"]},
        {"embargoed_until": None},  # no embargo to lift
    ):
        r = await api.patch(path, json=body)
        assert r.status_code == 200, (body, r.text)
        assert r.json()["changed"] is False and r.json()["version"] == 1, body
        assert r.headers["etag"] == '"v1"'
    assert stream_len(settings) == before
    held = await api.patch(path, json={"status": "withheld"})
    assert held.json()["changed"] is True and held.json()["version"] == 2
    after_hold = stream_len(settings)
    # A hold of a held item; and from an older version too: it already holds (RFC 9110).
    for headers in ({}, {"If-Match": '"v1"'}):
        again = await api.patch(path, json={"status": "withheld"}, headers=headers)
        assert again.status_code == 200 and again.json()["changed"] is False
        assert again.json()["version"] == 2
    assert stream_len(settings) == after_hold
    assert len((await version_of(api, item["uri"]))["versions"]) == 2


async def test_a_chief_pinning_a_pinned_item_writes_nothing(
    server: tuple[str, Any], settings: Settings
) -> None:
    chief = make_token(settings, "chief", ["en"], role="chief")
    async with httpx.AsyncClient(
        base_url=server[0], timeout=10, headers={"Authorization": f"Bearer {chief}"}
    ) as api:
        item = await post(api, pinned=True)
        before = stream_len(settings)
        r = await api.patch(f"/channels/en/items/{item['uri']}", json={"pinned": True})
        assert r.status_code == 200 and r.json()["changed"] is False
        assert stream_len(settings) == before
