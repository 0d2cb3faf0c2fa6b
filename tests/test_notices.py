"""Visible corrections and kill notices: a marked correction carries ``corrected_at``; a
kill's note reaches readers (live, on a replay, in the public history) only where the
channel shows notices and the item was on the air, stays the desk's otherwise, and goes
with a purge. Bad notices are refused naming the field, and write nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.helpers import make_token, post_item
from tests.redis_data import keys_holding, stream_entries
from tests.sse import start_reader
from ticker.domain.errors import Killed
from ticker.domain.events import decode
from ticker.domain.models import Item, Status, utcnow
from ticker.domain.notices import check_rekill, entry_notice, marked, public_notice
from ticker.settings import Channel, Settings

pytestmark = pytest.mark.anyio

NOTICE = "Withdrawn: the report was not confirmed"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # en shows kill notices to readers; ar keeps them for the desk (the default).
    return {
        "channels": (
            Channel(name="en", kill_notices=True, correction_mark_s=120),
            Channel(name="ar", language="ar"),
        )
    }


@pytest.fixture
def api_token(settings: Settings) -> str:
    return make_token(settings, "chief", ["en", "ar"], role="chief")  # purges take a chief


def entries(settings: Settings, channel: str = "en") -> list[dict[str, str]]:
    return [fields for _, fields in stream_entries(settings, channel)]


async def post(api: httpx.AsyncClient, channel: str = "en", **body: Any) -> dict[str, Any]:
    return await post_item(api, body.pop("headline", "Minister resigns"), channel, **body)


async def kill(
    api: httpx.AsyncClient, item: dict[str, Any], body: Any = None, **kw: Any
) -> httpx.Response:
    path = f"/channels/{item['channel']}/items/{item['uri']}"
    return await api.request("DELETE", path, json=body, **kw)


# -- the pure rules ------------------------------------------------------------------


def _item(**fields: Any) -> Item:
    now = utcnow()
    values: dict[str, Any] = {
        "uri": "abc",
        "channel": "en",
        "version": 1,
        "headline": "Minister resigns",
        "language": "en",
        "created_at": now,
        "updated_at": now,
        "expires_at": now + timedelta(hours=1),
        "author": "editor",
    }
    return Item(**{**values, **fields})


def test_a_kill_notice_is_public_only_on_a_channel_that_shows_them_for_an_item_on_air() -> None:
    now = utcnow()
    shows, keeps = Channel(name="en", kill_notices=True), Channel(name="ar")
    on_air = _item()
    assert public_notice(shows, on_air, NOTICE, now) == NOTICE
    assert public_notice(shows, on_air, None, now) is None
    assert public_notice(keeps, on_air, NOTICE, now) is None
    for off_air in (
        _item(status=Status.WITHHELD),
        _item(embargoed_until=now + timedelta(minutes=5)),
        _item(expires_at=now - timedelta(seconds=1)),
    ):
        assert public_notice(shows, off_air, NOTICE, now) is None, off_air


def test_a_mark_sets_corrected_at_and_an_unmarked_fix_keeps_the_last_one() -> None:
    now = utcnow()
    earlier = now - timedelta(minutes=3)
    assert marked(_item(), "corrected", now).corrected_at == now
    assert marked(_item(corrected_at=earlier), None, now).corrected_at == earlier


def test_a_second_kill_may_repeat_its_notice_but_not_change_or_add_one() -> None:
    killed = _item(status=Status.CANCELED, notice=NOTICE)
    check_rekill(killed, NOTICE)
    check_rekill(killed, None)
    check_rekill(_item(), "any note: the item is alive")
    for other, item in ((NOTICE + "!", killed), (NOTICE, _item(status=Status.CANCELED))):
        with pytest.raises(Killed):
            check_rekill(item, other)


@pytest.mark.parametrize(
    ("raw", "read"),
    [
        (NOTICE, NOTICE),
        ("  Withdrawn  ", "Withdrawn"),
        ("x" * 281, None),
        ("Withdrawn\nby the desk", None),
        ("\u200b", None),
        ("", None),
    ],
    ids=["plain", "trimmed", "too-long", "two-lines", "invisible", "empty"],
)
def test_a_remove_entrys_notice_is_input_and_a_bad_one_is_dropped_not_the_removal(
    raw: str, read: str | None
) -> None:
    fields = {"v": "1", "type": "remove", "uri": "abc", "reason": "kill", "notice": raw}
    assert entry_notice(fields) == read
    event = decode("1-0", fields, "en", utcnow())
    assert event is not None and event.removes == "abc"
    data = json.loads(event.frame.decode().split("data: ", 1)[1])
    assert data == ({"uri": "abc", "reason": "kill"} | ({"notice": read} if read else {}))


def test_only_a_kill_carries_a_notice_to_readers() -> None:
    fields = {"v": "1", "type": "remove", "uri": "abc", "reason": "expire", "notice": NOTICE}
    event = decode("1-0", fields, "en", utcnow())
    assert event is not None and b"notice" not in event.frame


# -- corrections marked as such ------------------------------------------------------


async def test_a_marked_correction_carries_corrected_at_and_later_silent_fixes_keep_it(
    api: httpx.AsyncClient, anon: httpx.AsyncClient, settings: Settings
) -> None:
    item = await post(api, headline="Death toll rises to thre")
    path = f"/channels/en/items/{item['uri']}"
    silent = (await api.patch(path, json={"headline": "Death toll rises to three"})).json()
    assert silent["corrected_at"] is None
    r = await api.patch(path, json={"headline": "Death toll rises to four", "notice": "corrected"})
    assert r.status_code == 200, r.text
    fixed = r.json()
    assert fixed["version"] == 3 and fixed["corrected_at"] == fixed["updated_at"]
    public = (await anon.get(path)).json()
    assert public["corrected_at"] == fixed["corrected_at"] and "notice" not in public
    later = (await api.patch(path, json={"source": "Reuters"})).json()
    assert later["version"] == 4 and later["corrected_at"] == fixed["corrected_at"]
    # A notice on a change that changes nothing: no version, no mark, no entry.
    count = len(entries(settings))
    same = await api.patch(path, json={"source": "Reuters", "notice": "corrected"})
    assert same.status_code == 200 and same.json()["changed"] is False
    assert same.json()["version"] == 4 and len(entries(settings)) == count


async def test_bad_notices_on_a_correction_are_refused_naming_the_field_and_write_nothing(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    item = await post(api)
    path = f"/channels/en/items/{item['uri']}"
    count = len(entries(settings))
    for body in (
        {"headline": "Minister quits", "notice": "fixed"},
        {"headline": "Minister quits", "notice": "Corrected"},
        {"headline": "Minister quits", "notice": None},
        {"headline": "Minister quits", "notice": True},
        {"headline": "Minister quits", "notice": ["corrected"]},
        {"notice": "corrected"},  # a mark alone marks nothing
    ):
        r = await api.patch(path, json=body)
        assert r.status_code == 422, (body, r.text)
        assert [d["field"] for d in r.json()["details"]] == ["notice"], (body, r.text)
    r = await api.post("/channels/en/items", json={"headline": "New", "notice": "corrected"})
    assert r.status_code == 422 and r.json()["details"][0]["field"] == "notice"
    assert len(entries(settings)) == count
    assert (await kill(api, item)).status_code == 200
    r = await api.patch(path, json={"headline": "Minister quits", "notice": "corrected"})
    assert r.status_code == 409 and r.json()["error"] == "killed"


# -- kill notices --------------------------------------------------------------------


async def test_a_kill_notice_reaches_readers_live_on_a_replay_and_in_the_public_history(
    api: httpx.AsyncClient, anon: httpx.AsyncClient, server: tuple[str, Any], settings: Settings
) -> None:
    item = await post(api, story="cabinet")
    edition = await post(api, channel="ar", headline="استقالة الوزير", story="cabinet")
    events = f"{server[0]}/channels/en/events"
    live = start_reader(events)
    try:
        await live.wait_for(lambda r: r.of("item"))
        # Every edition killed at once: the note goes with this one (the other's language
        # is not its own).
        r = await kill(api, item, {"notice": f"  {NOTICE}  "}, params={"all_editions": "true"})
        assert r.status_code == 200, r.text
        killed = {(k["channel"], k["status"], k["notice"]) for k in r.json()["killed"]}
        assert killed == {("en", "canceled", NOTICE), ("ar", "canceled", None)}
        assert edition["uri"] in {k["uri"] for k in r.json()["killed"]}
        await live.wait_for(lambda r: r.of("remove"))
        removal = {"uri": item["uri"], "reason": "kill", "notice": NOTICE}
        assert live.of("remove") == [removal]
    finally:
        await live.close()
    back = start_reader(events, headers={"Last-Event-ID": item["id"]})  # a returning reader
    try:
        await back.wait_for(lambda r: r.of("remove"))
        assert back.of("remove") == [removal]
    finally:
        await back.close()
    history = await anon.get("/channels/en/items?history=true")
    rows = [row for row in history.json()["items"] if row["event"] == "remove"]
    assert [{k: row[k] for k in ("uri", "reason", "notice")} for row in rows] == [removal]
    assert entries(settings)[-1]["notice"] == NOTICE  # for other services
    audit = (await api.get("/channels/en/audit")).json()["records"]
    assert [a["action"] for a in audit] == ["kill"] and NOTICE not in json.dumps(audit)


async def test_a_kill_notice_stays_the_desks_off_a_channel_that_shows_them_or_off_the_air(
    api: httpx.AsyncClient, anon: httpx.AsyncClient, server: tuple[str, Any], settings: Settings
) -> None:
    # What each channel shows is public: the widget reads it from the channel list.
    listed = (await anon.get("/channels")).json()
    assert [(c["name"], c["correction_mark_s"], c["kill_notices"]) for c in listed] == [
        ("en", 120, True),
        ("ar", 600, False),
    ]
    quiet = await post(api, channel="ar", headline="استقالة الوزير")
    held = await post(api, status="withheld")
    for item in (quiet, held):
        r = await kill(api, item, {"notice": NOTICE})
        assert r.status_code == 200, r.text
        desk = (await api.get(f"/channels/{item['channel']}/items/{item['uri']}")).json()
        assert desk["notice"] == NOTICE  # the desk's record
        assert all("notice" not in e for e in entries(settings, item["channel"]))
        history = await anon.get(f"/channels/{item['channel']}/items?history=true")
        assert NOTICE not in history.text
        reader = start_reader(
            f"{server[0]}/channels/{item['channel']}/events",
            headers={"Last-Event-ID": item["id"]},
        )
        try:
            await reader.wait_for(lambda r: r.of("remove"))
            assert reader.of("remove") == [{"uri": item["uri"], "reason": "kill"}]
        finally:
            await reader.close()


async def test_bad_kill_notices_are_refused_naming_the_field_and_write_nothing(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    item = await post(api)
    count = len(entries(settings))
    for body in (
        {"notice": "x" * 281},
        {"notice": "Withdrawn\nnot confirmed"},
        {"notice": "Withdrawn\u2028not confirmed"},
        {"notice": None},
        {"notice": 5},
        {"notice": ""},
        {"notice": "   "},
        {"notice": NOTICE, "reason": "libel"},
    ):
        r = await kill(api, item, body)
        assert r.status_code == 422, (body, r.text)
        field = "reason" if "reason" in body else "notice"
        assert [d["field"] for d in r.json()["details"]] == [field], (body, r.text)
    for raw, headers, status in (
        (b"not json", {"Content-Type": "application/json"}, 400),
        (b'{"notice": "Withdrawn"}', {"Content-Type": "text/plain"}, 415),
        (b'["Withdrawn"]', {"Content-Type": "application/json"}, 422),
    ):
        path = f"/channels/en/items/{item['uri']}"
        r = await api.request("DELETE", path, content=raw, headers=headers)
        assert r.status_code == status, (raw, r.text)
    assert len(entries(settings)) == count
    assert (await api.get(f"/channels/en/items/{item['uri']}")).json()["status"] == "usable"
    # A kill is final: the same kill again changes nothing, another note is refused.
    assert (await kill(api, item, {"notice": NOTICE})).status_code == 200
    again = await kill(api, item, {"notice": NOTICE})
    assert again.status_code == 200 and again.json()["changed"] is False
    assert (await kill(api, item)).json()["changed"] is False
    other = await kill(api, item, {"notice": "Withdrawn: a legal matter"})
    assert other.status_code == 409 and other.json()["error"] == "killed"


async def test_a_purge_takes_the_kill_notice_with_the_rest_of_the_text(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    item = await post(api)
    note = "Withdrawn: a libellous report about a named person"
    assert (await kill(api, item, {"notice": note})).status_code == 200
    assert keys_holding(settings, note)
    r = await api.post(f"/channels/en/items/{item['uri']}/purge", json={"reason": "court order"})
    assert r.status_code == 200, r.text
    assert keys_holding(settings, note) == []
