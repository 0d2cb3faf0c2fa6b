"""The machine-readable contract: every stream entry a real run writes (post, correction,
pin, hold, release, embargo release, expiry, kill, purge) validates against
docs/stream-entry.schema.json, and every kind the schema names is written. Real Redis, a
real uvicorn, the real sweeper."""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from tests.helpers import make_token
from tests.redis_data import rdb, stream_entries
from ticker.domain.events import decode, desk_decode
from ticker.domain.models import utcnow
from ticker.settings import Channel, Settings

pytestmark = pytest.mark.anyio

SCHEMA = json.loads((Path(__file__).parent.parent / "docs/stream-entry.schema.json").read_text())
FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _utc_time(value: object) -> bool:
    # RFC 3339 in UTC, as docs/streams.md says (jsonschema's own check needs an extra).
    if not isinstance(value, str):
        return True
    moment = datetime.fromisoformat(value)
    return moment.utcoffset() == timedelta(0)


VALIDATOR = Draft202012Validator(SCHEMA, format_checker=FORMATS)


def entries(settings: Settings) -> list[tuple[str, dict[str, Any]]]:
    """Every entry of the channel's stream, ``item`` parsed from its JSON."""
    return [(i, {**f, "item": json.loads(f["item"])}) for i, f in stream_entries(settings)]


def kind(fields: dict[str, Any]) -> str:
    """The entry kinds the schema names (its ``oneOf`` titles)."""
    if fields.get("reason") == "kill" and fields["item"].get("purged"):
        return "purge"
    return str(fields.get("reason") or fields["type"])


async def sweep_until(server: tuple[str, Any], settings: Settings, wanted: dict[str, str]) -> None:
    """Run the real sweeper until it has written an entry with these fields."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 8
    while not any(wanted.items() <= f.items() for _, f in entries(settings)):
        assert loop.time() < deadline, wanted
        await server[1].state.services.sweeper.sweep()
        await asyncio.sleep(0.1)


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # en shows kill notices, so a kill's note for readers is written (the entry's notice).
    return {
        "channels": (
            Channel(name="en", kill_notices=True),
            Channel(name="ar", language="ar"),
            Channel(name="es", language="es"),
        )
    }


@pytest.fixture
def chief(settings: Settings) -> str:
    return make_token(settings, "chief", ["en"], role="chief")


async def test_every_entry_of_a_real_run_validates_against_the_schema(
    server: tuple[str, Any], chief: str, settings: Settings
) -> None:
    contributor = make_token(settings, "stringer", ["en"], role="contributor")
    auth = {"Authorization": f"Bearer {chief}"}  # pins and purges take a chief
    async with httpx.AsyncClient(base_url=server[0], headers=auth, timeout=10) as api:
        posted = itertools.count(1)

        async def post(**body: Any) -> str:
            # Each its own headline: one posted a moment ago would be a duplicate (dupes.py).
            headline = f"News, item {next(posted)}"
            r = await api.post("/channels/en/items", json={"headline": headline, **body})
            assert r.status_code == 201, r.text
            return str(r.json()["uri"])

        async def patch(uri: str, **body: Any) -> None:
            r = await api.patch(f"/channels/en/items/{uri}", json=body)
            assert r.status_code == 200, r.text

        a = await post(story="budget-2027", source="Reuters", regions=["europe"])
        await patch(a, headline="News, corrected")
        await patch(a, headline="News, corrected again", notice="corrected")
        await patch(a, pinned=True)
        await patch(a, status="withheld")
        await patch(a, status="usable")
        await post(status="withheld", link="https://example.org/a")
        killed = await post()
        r = await api.delete(f"/channels/en/items/{killed}")
        assert r.status_code == 200, r.text
        noted = await post()
        r = await api.request(
            "DELETE", f"/channels/en/items/{noted}", json={"notice": "Withdrawn: not confirmed"}
        )
        assert r.status_code == 200, r.text
        purged = await post()
        r = await api.post(
            f"/channels/en/items/{purged}/purge",
            json={"reason": "court order"},
        )
        assert r.status_code == 200, r.text
        advisory = await post(kind="advisory")
        await patch(advisory, headline="Statement expected 18:30")
        r = await api.delete(f"/channels/en/items/{advisory}")
        assert r.status_code == 200, r.text
        # Sign-off: a contributor's posts wait (pending); one approved, one rejected, one
        # left to expire while it waits.
        stringer = {"Authorization": f"Bearer {contributor}"}
        waiting = []
        for n, body in enumerate(({}, {}, {"ttl": "1s"})):
            tip = {"headline": f"Tip {n}", **body}  # the same one again: a duplicate
            r = await api.post("/channels/en/items", json=tip, headers=stringer)
            assert r.status_code == 201 and r.json()["status"] == "pending", r.text
            waiting.append(r.json()["uri"])
        assert (await api.post(f"/channels/en/items/{waiting[0]}/approve")).status_code == 200
        r = await api.post(f"/channels/en/items/{waiting[1]}/reject", json={"note": "Unsure"})
        assert r.status_code == 200, r.text
        soon = (utcnow() + timedelta(milliseconds=600)).isoformat()
        embargoed = await post(embargoed_until=soon)
        brief = await post(ttl="1s")
        await sweep_until(server, settings, {"uri": embargoed, "reason": "release"})
        await sweep_until(server, settings, {"uri": brief, "reason": "expire"})
        await sweep_until(server, settings, {"uri": waiting[2], "reason": "expire"})

    seen = entries(settings)
    for entry_id, fields in seen:
        errors = [e.message for e in VALIDATOR.iter_errors(fields)]
        assert errors == [], (entry_id, fields, errors)
        # Nothing is written that the schema does not name (it allows additions, for
        # consumers; ticker itself adds a field only with the schema).
        assert set(fields) <= set(SCHEMA["properties"]), fields
        named = SCHEMA["$defs"]["item"]["properties"]
        assert set(fields["item"]) <= set(named) | {"purged"}, fields["item"]
    kinds = {kind(f) for _, f in seen}
    assert kinds == {"item", "release", "withhold", "kill", "purge", "expire"}
    assert any(f["item"].get("pinned") for _, f in seen)
    assert any(f["item"].get("story") is None for _, f in seen)  # the documented null
    assert any(f["item"].get("corrected_at") for _, f in seen)
    assert [f["notice"] for _, f in seen if "notice" in f] == ["Withdrawn: not confirmed"]
    statuses = {f["item"].get("status") for _, f in seen}
    assert {"usable", "withheld", "canceled", "pending", "rejected"} <= statuses
    assert any(f["item"].get("approved_by") == "chief" for _, f in seen)
    kinds_of_items = {f["item"].get("kind") for _, f in seen if not f["item"].get("purged")}
    assert kinds_of_items == {"headline", "advisory"}


def test_the_schema_refuses_what_is_not_an_entry() -> None:
    good = {
        "v": "1",
        "type": "remove",
        "uri": "abc",
        "reason": "kill",
        "item": {"uri": "abc", "channel": "en", "status": "canceled", "purged": True},
    }
    assert VALIDATOR.is_valid(good)
    for bad in (
        {**good, "v": "2"},
        {**good, "reason": "release"},  # a release is an item entry
        {**good, "type": "item"},
        {**good, "reason": "filter"},  # SSE only, never stored
        {**good, "item": []},
        {k: v for k, v in good.items() if k != "uri"},
        {**good, "notice": "Withdrawn"},  # a purge carries no text, a note neither
    ):
        assert not VALIDATOR.is_valid(bad), bad


@pytest.mark.parametrize("item", ["[]", "", "not json", None])
def test_a_remove_is_delivered_whatever_its_item_holds(item: str | None) -> None:
    """docs/streams.md: a removal reaches readers on its uri and reason alone."""
    fields = {"v": "1", "type": "remove", "uri": "abc", "reason": "kill"}
    if item is not None:
        fields["item"] = item
    event = decode("1-0", fields, "en", utcnow())
    assert event is not None and event.removes == "abc"
    assert b'"reason":"kill"' in event.frame


@pytest.mark.parametrize(
    ("item", "public"),
    [
        ('{"kind":"advisory","headline":"x"}', False),
        ('{"kind": "advisory"}', False),  # any JSON spacing
        ('{"kind":"headline","headline":"An advisory from the police"}', True),
        ('{"kind":"headline","headline":"advisory"}', True),  # the word, not the kind
        ('["advisory"]', True),
        ('{"kind":"advisory"', True),  # unreadable: delivered as any removal
    ],
)
def test_an_advisorys_removal_reaches_tokens_only(item: str, public: bool) -> None:
    """docs/streams.md: the one exception to "a removal is delivered on its uri and reason
    alone" is an advisory's (its kind never changes, so no anonymous reader held it)."""
    fields = {"v": "1", "type": "remove", "uri": "abc", "reason": "kill", "item": item}
    assert (decode("1-0", fields, "en", utcnow()) is not None) is public
    desk = desk_decode("1-0", fields, "en")
    assert desk is not None and desk.removes == "abc"


@pytest.mark.parametrize(
    "fields",
    [
        {"v": "1", "type": "remove", "reason": "kill", "item": "{}"},  # no uri
        {"v": "1", "type": "remove", "uri": "abc", "reason": "release", "item": "{}"},
    ],
)
def test_a_remove_without_a_uri_or_a_removal_reason_is_skipped(fields: dict[str, str]) -> None:
    assert decode("1-0", fields, "en", utcnow()) is None


async def test_the_documented_bootstrap_misses_nothing_between_snapshot_and_stream(
    server: tuple[str, Any], token: str, settings: Settings
) -> None:
    """docs/streams.md "Building the current state": one MULTI gives the items hash and
    the point to read on from (here a group created with MKSTREAM on a channel that has
    no stream yet); the snapshot plus what follows is the state."""
    events = f"{settings.key_prefix}:{{es}}:events"
    items = f"{settings.key_prefix}:{{es}}:items"
    auth = {"Authorization": f"Bearer {token}"}
    client = rdb(settings)
    try:
        assert not client.exists(events)  # a fresh channel: the group needs MKSTREAM
        async with httpx.AsyncClient(base_url=server[0], headers=auth, timeout=10) as api:
            path = "/channels/es/items"
            first = (await api.post(path, json={"headline": "Uno"})).json()
            pipe = client.pipeline(transaction=True)
            pipe.xgroup_create(events, "copy", id="$", mkstream=True)
            pipe.hgetall(items)
            _, snapshot = pipe.execute()
            state = {k.decode(): json.loads(v) for k, v in snapshot.items()}
            second = (await api.post(path, json={"headline": "Dos"})).json()
            await api.patch(f"{path}/{first['uri']}", json={"headline": "Uno, corregido"})
            await api.delete(f"{path}/{second['uri']}")
        rows = client.xreadgroup("copy", "c1", {events: ">"}, count=100)
        for _, fields in rows[0][1] if rows else []:
            item = json.loads(fields[b"item"])
            uri = fields[b"uri"].decode()
            if item.get("version", 0) >= state.get(uri, {}).get("version", 0):
                state[uri] = {**state.get(uri, {}), **item}
        now = {k.decode(): json.loads(v) for k, v in client.hgetall(items).items()}
    finally:
        client.close()
    assert {u: (i["version"], i["headline"], i["status"]) for u, i in state.items()} == {
        u: (i["version"], i["headline"], i["status"]) for u, i in now.items()
    }
    assert len(state) == 2
