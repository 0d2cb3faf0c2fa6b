"""Sign-off: a contributor's post waits, pending, until an editor or a chief approves it
(on air, or at its embargo) or rejects it with a note; ``sign_off: all`` makes every post
wait for a second person. Real Redis, a real uvicorn, every role against every verb,
and the channel's keys checked after each step (live, queue, embargo, expiry)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.helpers import bearer, make_token
from tests.redis_data import rdb
from ticker.domain.models import utcnow
from ticker.settings import Channel, Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "channels": (
            Channel(name="en"),
            Channel(name="wire", sign_off="all"),
            Channel(name="es", language="es"),
        )
    }


class Desk:
    """The API as one token uses it."""

    def __init__(self, http: httpx.AsyncClient, secret: str, channel: str = "en") -> None:
        self.http, self.auth, self.channel = http, bearer(secret), channel

    def path(self, uri: str = "", verb: str = "") -> str:
        base = f"/channels/{self.channel}/items"
        return "/".join(p for p in (base, uri, verb) if p)

    async def post(self, headline: str, **fields: Any) -> httpx.Response:
        body = {"headline": headline, **fields}
        return await self.http.post(self.path(), json=body, headers=self.auth)

    async def posted(self, headline: str, **fields: Any) -> dict[str, Any]:
        r = await self.post(headline, **fields)
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def approve(self, uri: str, **headers: str) -> httpx.Response:
        return await self.http.post(self.path(uri, "approve"), headers={**self.auth, **headers})

    async def reject(self, uri: str, note: Any = "Not confirmed", **kw: Any) -> httpx.Response:
        body = {"note": note} if note is not None else {}
        return await self.http.post(self.path(uri, "reject"), json=body, headers=self.auth, **kw)

    async def patch(self, uri: str, **fields: Any) -> httpx.Response:
        return await self.http.patch(self.path(uri), json=fields, headers=self.auth)

    async def kill(self, uri: str) -> httpx.Response:
        return await self.http.delete(self.path(uri), headers=self.auth)

    async def queue(self) -> dict[str, dict[str, Any]]:
        r = await self.http.get(f"/channels/{self.channel}/queue", headers=self.auth)
        assert r.status_code == 200, r.text
        return {row["uri"]: row for row in r.json()["items"]}

    async def on_air(self) -> list[str]:
        r = await self.http.get(f"/channels/{self.channel}/items", headers=self.auth)
        return [row["uri"] for row in r.json()["items"]]

    async def item(self, uri: str) -> dict[str, Any]:
        r = await self.http.get(self.path(uri), headers=self.auth)
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def audit(self) -> list[dict[str, Any]]:
        r = await self.http.get(f"/channels/{self.channel}/audit", headers=self.auth)
        assert r.status_code == 200, r.text
        return list(r.json()["records"])


def indexes(settings: Settings, uri: str, channel: str = "en") -> set[str]:
    """Which of the channel's item indexes hold ``uri``."""
    client = rdb(settings)
    try:
        base = f"{settings.key_prefix}:{{{channel}}}"
        return {
            name
            for name in ("live", "held", "embargo", "expiry")
            if client.zscore(f"{base}:{name}", uri) is not None
        }
    finally:
        client.close()


@pytest.fixture
def roles(settings: Settings) -> dict[str, str]:
    return {
        role: make_token(settings, role, ["en", "wire"], role=role)
        for role in ("viewer", "contributor", "editor", "chief")
    }


async def test_a_contributors_post_waits_off_air_and_an_approval_puts_it_on_air(
    anon: httpx.AsyncClient, roles: dict[str, str], settings: Settings
) -> None:
    stringer, editor = Desk(anon, roles["contributor"]), Desk(anon, roles["editor"])
    item = await stringer.posted("Dam breach reported near Hoorn", ttl="2h")
    uri = item["uri"]
    assert item["status"] == "pending" and item["author"] == "contributor"
    assert indexes(settings, uri) == {"held", "expiry"}  # in the queue, not on the bar
    assert uri not in await editor.on_air()
    row = (await editor.queue())[uri]
    assert row["queue_status"] == "pending" and row["headline"] == item["headline"]
    assert (await stringer.queue())[uri]["queue_status"] == "pending"  # its own view too
    assert (await anon.get(stringer.path(uri))).status_code == 404  # anonymous

    r = await editor.approve(uri)
    assert r.status_code == 200, r.text
    approved = r.json()
    assert approved["changed"] is True and r.headers["etag"] == '"v2"'
    assert approved["status"] == "usable" and approved["version"] == 2
    # The words stay the contributor's; the approver is recorded beside them.
    assert approved["author"] == "contributor" and approved["approved_by"] == "editor"
    assert approved["expires_at"] == item["expires_at"]  # its time counts from the post
    assert indexes(settings, uri) == {"live", "expiry"}
    assert await editor.on_air() == [uri]
    assert uri not in await editor.queue()
    public = (await anon.get(stringer.path(uri))).json()
    assert public["headline"] == item["headline"] and "approved_by" not in public
    versions = (await editor.item(uri))["versions"]
    assert [(v["status"], v["author"], v["approved_by"]) for v in versions] == [
        ("pending", "contributor", None),
        ("usable", "contributor", "editor"),
    ]
    (record, *_) = await editor.audit()
    assert {k: record[k] for k in ("action", "uri", "by")} == {
        "action": "approve",
        "uri": uri,
        "by": "editor",
    }
    history = await anon.get(editor.path(), params={"history": "true"}, headers=editor.auth)
    assert [(e["status"], e.get("approved_by")) for e in history.json()["items"]] == [
        ("usable", "editor"),
        ("pending", None),
    ]

    # Anonymous readers get the approved version alone: the pending one was never on air.
    public_history = await anon.get(editor.path(), params={"history": "true"})
    assert [(e["uri"], e["version"]) for e in public_history.json()["items"]] == [(uri, 2)]
    assert "approved_by" not in public_history.text and "pending" not in public_history.text

    # Again (a retry after a lost reply): nothing more is written.
    again = await editor.approve(uri)
    assert again.status_code == 200 and again.json()["changed"] is False
    assert again.json()["version"] == 2
    # Now the desk's: the contributor may no longer change or withdraw it.
    for refused in (
        await stringer.patch(uri, headline="Dam breach near Hoorn"),
        await stringer.kill(uri),
    ):
        assert refused.status_code == 403, refused.text
        assert "was approved" in refused.json()["message"]
    assert (await editor.patch(uri, headline="Dam breach near Hoorn")).status_code == 200


async def test_an_approved_item_with_an_embargo_waits_for_it(
    anon: httpx.AsyncClient, roles: dict[str, str], settings: Settings
) -> None:
    stringer, chief = Desk(anon, roles["contributor"]), Desk(anon, roles["chief"])
    later = (utcnow() + timedelta(hours=1)).isoformat()
    uri = (await stringer.posted("Budget leaks", embargoed_until=later))["uri"]
    # Waiting for sign-off, it is in no embargo schedule: the sweeper must not release it.
    assert indexes(settings, uri) == {"held", "expiry"}
    r = await chief.approve(uri)
    assert r.status_code == 200 and r.json()["approved_by"] == "chief"
    assert indexes(settings, uri) == {"embargo", "expiry"}
    assert (await chief.queue())[uri]["queue_status"] == "embargoed"
    assert uri not in await chief.on_air()


async def test_a_rejected_item_stays_in_the_queue_with_its_note_and_never_goes_on_air(
    anon: httpx.AsyncClient, roles: dict[str, str], settings: Settings
) -> None:
    stringer, editor = Desk(anon, roles["contributor"]), Desk(anon, roles["editor"])
    uri = (await stringer.posted("Minister resigns"))["uri"]
    r = await editor.reject(uri, note="One source only: get a second")
    assert r.status_code == 200, r.text
    rejected = r.json()
    assert rejected["status"] == "rejected" and rejected["version"] == 2
    assert rejected["rejected_by"] == "editor"
    assert rejected["rejection_note"] == "One source only: get a second"
    assert indexes(settings, uri) == {"held", "expiry"}
    row = (await stringer.queue())[uri]  # the contributor reads why
    assert row["queue_status"] == "rejected" and row["rejection_note"].startswith("One source")
    assert (await anon.get(stringer.path(uri))).status_code == 404  # anonymous

    approve = await editor.approve(uri)
    assert approve.status_code == 409 and approve.json()["error"] == "rejected"
    assert "rejected by editor: One source only" in approve.json()["message"]
    for refused in (
        await editor.patch(uri, headline="Minister resigns, two sources say"),
        await stringer.patch(uri, headline="Minister resigns, two sources say"),
        await editor.patch(uri, status="usable"),
    ):
        assert refused.status_code == 409 and refused.json()["error"] == "rejected"
    same = await editor.reject(uri, note="One source only: get a second")
    assert same.status_code == 200 and same.json()["changed"] is False
    other = await editor.reject(uri, note="Another reason")
    assert other.status_code == 409 and other.json()["error"] == "rejected"
    (record, *_) = await editor.audit()
    assert (record["action"], record["by"], record["reason"]) == (
        "reject",
        "editor",
        "One source only: get a second",
    )

    metrics = await anon.get("/metrics", headers=bearer(roles["chief"]))
    assert 'ticker_signoffs_total{channel="en",decision="rejected"} 1.0' in metrics.text
    assert 'ticker_signoffs_total{channel="en",decision="approved"} 0.0' in metrics.text

    withdrawn = await stringer.kill(uri)  # its own rejected item: withdrawn
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "canceled"
    assert indexes(settings, uri) == set()
    assert uri not in await editor.queue()
    killed = await editor.approve(uri)
    assert killed.status_code == 409 and killed.json()["error"] == "killed"


async def test_a_contributor_changes_only_its_own_items_that_wait(
    anon: httpx.AsyncClient, roles: dict[str, str], settings: Settings
) -> None:
    mine = Desk(anon, roles["contributor"])
    other = Desk(anon, make_token(settings, "other-stringer", ["en"], role="contributor"))
    editor, chief = Desk(anon, roles["editor"]), Desk(anon, roles["chief"])
    uri = (await mine.posted("Storm closes the A7"))["uri"]

    corrected = await mine.patch(uri, headline="Storm closes the A7 near Joure")
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["status"] == "pending" and corrected.json()["version"] == 2
    # An editor's fix keeps it pending, and it stays the contributor's to withdraw.
    fixed = await editor.patch(uri, headline="Storm closes the A7 near Joure, police say")
    assert fixed.status_code == 200 and fixed.json()["status"] == "pending"
    assert indexes(settings, uri) == {"held", "expiry"}

    refusals = {
        "another's correction": await other.patch(uri, headline="Mine now"),
        "another's kill": await other.kill(uri),
        "hold": await mine.patch(uri, status="withheld"),
        "release": await mine.patch(uri, status="usable"),
        "pin": await mine.patch(uri, pinned=True),
        "own approval": await mine.approve(uri),
        "own rejection": await mine.reject(uri),
        "purge": await anon.post(
            mine.path(uri, "purge"), json={"reason": "mine"}, headers=mine.auth
        ),
    }
    for what, r in refusals.items():
        assert r.status_code == 403, (what, r.text)
        assert r.json()["error"] == "forbidden", what
    assert "posted by contributor" in refusals["another's kill"].json()["message"]
    assert "holding and releasing need an editor" in refusals["hold"].json()["message"]
    assert "need an editor token" in refusals["own approval"].json()["message"]

    # An editor's item is not the contributor's, on air or held.
    on_air = (await editor.posted("Editor's flash"))["uri"]
    assert (await mine.patch(on_air, headline="Changed")).status_code == 403
    assert (await mine.kill(on_air)).status_code == 403
    # An editor neither holds nor releases an item that waits: it approves or rejects it.
    for status in ("usable", "withheld"):
        r = await chief.patch(uri, status=status)
        assert r.status_code == 409 and r.json()["error"] == "pending", r.text
    withdrawn = await mine.kill(uri)
    assert withdrawn.status_code == 200 and withdrawn.json()["author"] == "contributor"
    assert (await mine.kill(uri)).json()["changed"] is False
    assert indexes(settings, uri) == set()


async def test_every_role_against_approve_and_reject(
    anon: httpx.AsyncClient, roles: dict[str, str], settings: Settings
) -> None:
    stringer = Desk(anon, roles["contributor"])
    expected = {"viewer": 403, "contributor": 403, "editor": 200, "chief": 200}
    for verb in ("approve", "reject"):
        for role, status in expected.items():
            uri = (await stringer.posted(f"{verb} by {role}"))["uri"]
            desk = Desk(anon, roles[role])
            r = await (desk.approve(uri) if verb == "approve" else desk.reject(uri))
            assert r.status_code == status, (verb, role, r.text)
            if status == 403:  # each told what a sign-off needs
                assert "editor token" in r.json()["message"], r.text
            after = (await Desk(anon, roles["editor"]).item(uri))["status"]
            assert after == {
                403: "pending",
                200: {"approve": "usable", "reject": "rejected"}[verb],
            }.get(status), (verb, role)
        uri = (await stringer.posted(f"{verb} by others"))["uri"]
        others = {
            "no token": ({}, 401),
            "ops": (bearer(make_token(settings, f"ops-{verb}", ["*"], role="ops")), 403),
            "another channel": (bearer(make_token(settings, f"es-{verb}", ["es"])), 403),
            "wrong token": (bearer("tk_nope"), 401),
        }
        for who, (headers, status) in others.items():
            r = await anon.post(stringer.path(uri, verb), json={"note": "x"}, headers=headers)
            assert r.status_code == status, (verb, who, r.text)
    # A viewer does not post at all; a contributor's token says what it lacks.
    viewer = await Desk(anon, roles["viewer"]).post("Viewer's flash")
    assert viewer.status_code == 403 and "needs a contributor token" in viewer.json()["message"]


async def test_bad_sign_off_requests_are_refused_and_write_nothing(
    anon: httpx.AsyncClient, roles: dict[str, str], settings: Settings
) -> None:
    stringer, editor = Desk(anon, roles["contributor"]), Desk(anon, roles["editor"])
    uri = (await stringer.posted("Ferry aground off Texel"))["uri"]
    long_note = "x" * 501
    cases: list[tuple[str, Any, int, str]] = [
        ("unknown uri", editor.approve("nope123"), 404, "not_found"),
        (
            "unknown channel",
            anon.post("/channels/xx/items/a/approve", headers=editor.auth),
            404,
            "not_found",
        ),
        ("no note", editor.reject(uri, note=None), 422, "invalid_request"),
        (
            "null note",
            anon.post(editor.path(uri, "reject"), json={"note": None}, headers=editor.auth),
            422,
            "invalid_request",
        ),
        ("empty note", editor.reject(uri, note="  "), 422, "invalid_request"),
        ("note too long", editor.reject(uri, note=long_note), 422, "invalid_request"),
        ("two lines", editor.reject(uri, note="one\ntwo"), 422, "invalid_request"),
        ("note not a string", editor.reject(uri, note=["x"]), 422, "invalid_request"),
        (
            "unknown field",
            anon.post(editor.path(uri, "approve"), json={"force": True}, headers=editor.auth),
            422,
            "invalid_request",
        ),
        (
            "not JSON",
            anon.post(
                editor.path(uri, "reject"),
                content=b"note",
                headers={**editor.auth, "Content-Type": "text/plain"},
            ),
            415,
            "unsupported_media_type",
        ),
        ("stale If-Match", editor.approve(uri, **{"If-Match": '"v9"'}), 409, "stale"),
        ("bad If-Match", editor.approve(uri, **{"If-Match": "v1"}), 400, "bad_if_match"),
        (
            "If-Match and base_version disagree",
            anon.post(
                editor.path(uri, "approve"),
                json={"base_version": 2},
                headers={**editor.auth, "If-Match": '"v1"'},
            ),
            400,
            "",
        ),
    ]
    for what, call, status, code in cases:
        r = await call
        assert r.status_code == status, (what, r.text)
        assert not code or r.json()["error"] == code, (what, r.text)
        assert r.json()["message"], what
    assert (await editor.item(uri))["version"] == 1  # nothing was written
    assert "note: must be at most 500 characters" in (await editor.reject(uri, note=long_note)).text

    # The right version goes through; an item that never waited is not "approved".
    ok = await editor.approve(uri, **{"If-Match": '"v1"'})
    assert ok.status_code == 200 and ok.json()["status"] == "usable"
    flash = (await editor.posted("Editor's own flash"))["uri"]
    for r in (await editor.approve(flash), await editor.reject(flash)):
        assert r.status_code == 409 and r.json()["error"] == "not_pending", r.text
    assert (await editor.reject(uri)).json()["error"] == "not_pending"  # approved already
    # Withheld is the desk's: a post that waits asks for no hold.
    held = await stringer.post("Held by a stringer", status="withheld")
    assert held.status_code == 422 and held.json()["details"][0]["field"] == "status"


async def test_sign_off_all_makes_every_post_wait_for_a_second_person(
    anon: httpx.AsyncClient, roles: dict[str, str], settings: Settings
) -> None:
    editor = Desk(anon, roles["editor"], "wire")
    chief = Desk(anon, roles["chief"], "wire")
    second = Desk(anon, make_token(settings, "second-editor", ["wire"]), "wire")
    item = await editor.posted("Wire: PM statement expected 18:30")
    uri = item["uri"]
    assert item["status"] == "pending"
    assert indexes(settings, uri, "wire") == {"held", "expiry"}

    own = await editor.approve(uri)
    assert own.status_code == 403 and own.json()["error"] == "own_item"
    assert "another person approves it" in own.json()["message"]
    # One who corrected the words wrote them too.
    assert (await chief.patch(uri, headline="Wire: PM statement at 18:30")).status_code == 200
    assert (await chief.approve(uri)).json()["error"] == "own_item"
    r = await second.approve(uri)
    assert r.status_code == 200 and r.json()["approved_by"] == "second-editor"
    assert await second.on_air() == [uri]
    # A correction of an item signed off goes straight on air.
    fixed = await editor.patch(uri, headline="Wire: PM statement at 18:45")
    assert fixed.status_code == 200 and fixed.json()["status"] == "usable"
    assert await second.on_air() == [uri]
    # The author may still reject its own (a withdrawal with a note); a chief's post waits.
    mine = (await chief.posted("Chief's wire"))["uri"]
    assert (await chief.reject(mine, note="Wrong slug")).status_code == 200
    assert (await chief.post("Chief's wire, held", status="withheld")).status_code == 422


async def test_a_pending_item_expires_like_any_item_and_can_no_longer_be_approved(
    server: tuple[str, Any], anon: httpx.AsyncClient, roles: dict[str, str], settings: Settings
) -> None:
    stringer, editor = Desk(anon, roles["contributor"]), Desk(anon, roles["editor"])
    uri = (await stringer.posted("Brief tip", ttl="1s"))["uri"]
    sweeper = server[1].state.services.sweeper
    deadline = asyncio.get_running_loop().time() + 5
    while indexes(settings, uri):  # the real sweeper, called until the second is up
        assert asyncio.get_running_loop().time() < deadline, indexes(settings, uri)
        await sweeper.sweep()
        await asyncio.sleep(0.05)
    assert uri not in await editor.queue()
    r = await editor.approve(uri)
    assert r.status_code == 409 and r.json()["error"] == "expired", r.text
    history = await anon.get(editor.path(), params={"history": "true"}, headers=editor.auth)
    (last, *_) = history.json()["items"]
    assert (last["uri"], last["event"], last["reason"]) == (uri, "remove", "expire")
    assert (await anon.get(stringer.path(uri))).status_code == 404  # never public


async def test_a_contributors_advisory_waits_for_sign_off_and_never_goes_on_air(
    anon: httpx.AsyncClient, roles: dict[str, str], settings: Settings
) -> None:
    # Partners read advisories in the stream: a stringer's still needs a second person.
    stringer, editor = Desk(anon, roles["contributor"]), Desk(anon, roles["editor"])
    note = await stringer.posted("Police briefing expected at 18:30", kind="advisory")
    uri = note["uri"]
    assert note["status"] == "pending" and note["kind"] == "advisory"
    assert (await editor.queue())[uri]["queue_status"] == "pending"
    r = await editor.approve(uri)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "usable" and r.json()["approved_by"] == "editor"
    # Approved, it is an advisory like any other: off the queue, never on the bar.
    assert uri not in await editor.queue()
    assert uri not in await editor.on_air()
    assert "live" not in indexes(settings, uri)
    assert (await anon.get(stringer.path(uri))).status_code == 404  # anonymous
