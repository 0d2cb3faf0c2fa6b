"""Embargo control: a release puts an embargoed item on air now, a PATCH sets or moves the
embargo while the item still waits, clock times are read in the channel's time zone, and
the queue says "embargoed". Real Redis, a real uvicorn; the parsing also as unit tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.redis_data import stream_len
from ticker.domain.when import parse_when, time_zone
from ticker.settings import Channel, Settings

pytestmark = pytest.mark.anyio

ZONE = "Pacific/Kiritimati"  # UTC+14: a clock time there is never UTC's by accident


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"channels": (Channel(name="en", timezone=ZONE), Channel(name="es", language="es"))}


_EDITION = itertools.count(1)


async def embargoed(api: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    # Each its own headline: one posted a moment ago would be a duplicate (dupes.py).
    headline = f"Results at noon, edition {next(_EDITION)}"
    r = await api.post("/channels/en/items", json={"headline": headline, "embargo": "10m", **body})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def on_air(api: httpx.AsyncClient) -> list[str]:
    async with httpx.AsyncClient(base_url=str(api.base_url), timeout=10) as anonymous:
        return [i["uri"] for i in (await anonymous.get("/channels/en/items")).json()["items"]]


async def test_release_lifts_an_embargo_and_the_item_goes_on_air_now(
    api: httpx.AsyncClient,
) -> None:
    item = await embargoed(api)
    assert item["uri"] not in await on_air(api)
    r = await api.patch(
        f"/channels/en/items/{item['uri']}", json={"status": "usable", "embargoed_until": None}
    )
    assert r.status_code == 200, r.text
    assert r.json()["changed"] is True and r.json()["embargoed_until"] is None
    assert item["uri"] in await on_air(api)
    queue = (await api.get("/channels/en/queue")).json()["items"]
    assert queue == []


async def test_lifting_an_embargo_keeps_a_hold(api: httpx.AsyncClient) -> None:
    item = await embargoed(api, status="withheld")
    path = f"/channels/en/items/{item['uri']}"
    r = await api.patch(path, json={"embargoed_until": None})
    assert r.status_code == 200 and r.json()["status"] == "withheld"
    assert item["uri"] not in await on_air(api)
    (row,) = (await api.get("/channels/en/queue")).json()["items"]
    assert row["queue_status"] == "withheld"


async def test_an_embargo_can_be_moved_while_the_item_waits(api: httpx.AsyncClient) -> None:
    item = await embargoed(api)
    path = f"/channels/en/items/{item['uri']}"
    r = await api.patch(path, json={"embargo": "1h"})
    assert r.status_code == 200, r.text
    moved = datetime.fromisoformat(r.json()["embargoed_until"])
    assert timedelta(minutes=59) < moved - datetime.now(UTC) <= timedelta(hours=1)
    later = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    r = await api.patch(path, json={"embargoed_until": later.isoformat()})
    assert r.status_code == 200
    assert datetime.fromisoformat(r.json()["embargoed_until"]) == later
    assert r.json()["version"] == 3
    (row,) = (await api.get("/channels/en/queue")).json()["items"]
    assert row["queue_status"] == "embargoed" and row["status"] == "usable"
    assert item["uri"] not in await on_air(api)
    # A ttl in the same change counts from the new release time.
    r = await api.patch(path, json={"embargo": "3h", "ttl": "1h"})
    assert r.status_code == 200, r.text
    body = r.json()
    span = datetime.fromisoformat(body["expires_at"]) - datetime.fromisoformat(
        body["embargoed_until"]
    )
    assert span == timedelta(hours=1)


def next_clock(zone: str, ahead: timedelta) -> tuple[str, datetime]:
    """``HH:MM`` some time from now in ``zone``, and the moment it means (independently)."""
    local = (datetime.now(ZoneInfo(zone)) + ahead).replace(second=0, microsecond=0)
    return local.strftime("%H:%M"), local.astimezone(UTC)


async def test_a_clock_time_is_the_next_one_in_the_channels_time_zone(
    api: httpx.AsyncClient,
) -> None:
    text, meant = next_clock(ZONE, timedelta(hours=2))
    item = await embargoed(api, embargo=text)
    assert datetime.fromisoformat(item["embargoed_until"]) == meant
    # A time already past today is tomorrow's.
    text, meant = next_clock(ZONE, -timedelta(hours=1))
    item = await embargoed(api, embargo=text + ":00")
    assert datetime.fromisoformat(item["embargoed_until"]) == meant + timedelta(days=1)
    # Another channel, another zone (UTC by default).
    text, meant = next_clock("UTC", timedelta(hours=2))
    r = await api.post("/channels/es/items", json={"headline": "x", "embargo": text})
    assert datetime.fromisoformat(r.json()["embargoed_until"]) == meant


FORMS = "a duration (30m, 2h), a clock time (18:30) or an RFC 3339 time"


@pytest.mark.parametrize(
    ("body", "field", "said"),
    [
        ({"embargo": "25:00"}, "embargo", "'25:00' is not a clock time"),
        ({"embargo": "18:3"}, "embargo", f"'18:3' is not {FORMS}"),
        ({"embargo": "soon"}, "embargo", FORMS),
        ({"embargo": "0s"}, "embargo", FORMS),
        ({"embargo": "2026-13-01T10:00Z"}, "embargo", "is not an RFC 3339 time"),
        ({"embargoed_until": "2001-01-01T00:00:00Z"}, "embargoed_until", "must be in the future"),
        ({"embargo": "1h", "embargoed_until": None}, "embargo", "either embargo or"),
        ({"embargo": None}, "embargo", "may not be null"),
        ({"embargo": "30d"}, "embargo", "history_max_age"),
        ({"embargo": "7h"}, "embargo", "must end before the item expires"),
    ],
)
async def test_bad_embargo_changes_are_422_naming_the_field_and_write_nothing(
    api: httpx.AsyncClient, settings: Settings, body: dict[str, Any], field: str, said: str
) -> None:
    item = await embargoed(api)  # expires 6h after its release (the channel's item_ttl)
    before = stream_len(settings)
    r = await api.patch(f"/channels/en/items/{item['uri']}", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["details"][0]["field"] == field
    assert said in r.json()["message"], r.json()["message"]
    assert stream_len(settings) == before


async def test_an_embargo_cannot_be_set_on_an_item_already_on_air(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    r = await api.post("/channels/en/items", json={"headline": "Already out"})
    path = f"/channels/en/items/{r.json()['uri']}"
    before = stream_len(settings)
    for body in ({"embargo": "30m"}, {"embargoed_until": "2099-01-01T00:00:00Z"}):
        r = await api.patch(path, json=body)
        assert r.status_code == 422, r.text
        assert "while the item waits for it; this one is on air" in r.json()["message"]
    assert stream_len(settings) == before


async def test_a_killed_item_cannot_be_released(api: httpx.AsyncClient) -> None:
    item = await embargoed(api)
    path = f"/channels/en/items/{item['uri']}"
    assert (await api.delete(path)).status_code == 200
    r = await api.patch(path, json={"status": "usable", "embargoed_until": None})
    assert r.status_code == 409 and r.json()["error"] == "killed"
    assert item["uri"] not in await on_air(api)


async def test_a_post_error_names_every_accepted_form(api: httpx.AsyncClient) -> None:
    r = await api.post("/channels/en/items", json={"headline": "x", "embargo": "tomorrow"})
    assert r.status_code == 422
    assert r.json()["details"] == [
        {
            "field": "embargo",
            "message": f"'tomorrow' is not {FORMS} (2026-12-01T18:30:00Z)",
        }
    ]


# -- the parsing rule, as unit tests ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("18:30", datetime(2026, 3, 1, 18, 30, tzinfo=UTC)),
        ("18:30:15", datetime(2026, 3, 1, 18, 30, 15, tzinfo=UTC)),
        ("9:05", datetime(2026, 3, 2, 9, 5, tzinfo=UTC)),  # passed today: tomorrow
        ("12:00", datetime(2026, 3, 2, 12, 0, tzinfo=UTC)),  # now exactly: tomorrow
        ("30m", datetime(2026, 3, 1, 12, 30, tzinfo=UTC)),
        ("90", datetime(2026, 3, 1, 12, 1, 30, tzinfo=UTC)),
        ("PT1H", datetime(2026, 3, 1, 13, 0, tzinfo=UTC)),
        ("2026-03-04T10:00:00+01:00", datetime(2026, 3, 4, 9, 0, tzinfo=UTC)),
        ("2026-03-04T10:00Z", datetime(2026, 3, 4, 10, 0, tzinfo=UTC)),
        ("2026-03-04 10:00", datetime(2026, 3, 4, 10, 0, tzinfo=UTC)),  # the channel's zone
    ],
)
def test_what_an_editor_types_means_one_moment(text: str, expected: datetime) -> None:
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert parse_when(text).resolve(now, UTC) == expected


def test_a_clock_time_follows_the_zones_daylight_saving() -> None:
    amsterdam = time_zone("Europe/Amsterdam")
    winter = datetime(2026, 1, 15, 6, 0, tzinfo=UTC)
    summer = datetime(2026, 7, 15, 6, 0, tzinfo=UTC)
    assert parse_when("18:30").resolve(winter, amsterdam).time() == time(17, 30)
    assert parse_when("18:30").resolve(summer, amsterdam).time() == time(16, 30)


@pytest.mark.parametrize("name", ["Mars/Base", "", "../etc/passwd", "utc+2"])
def test_an_unknown_time_zone_is_refused_with_examples(name: str) -> None:
    with pytest.raises(ValueError, match="is not an IANA time zone name"):
        time_zone(name)
    with pytest.raises(ValueError, match="IANA"):
        Channel(name="en", timezone=name)
