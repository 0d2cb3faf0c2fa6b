"""Ids and numbers from a request are checked against what Redis really takes (each part of a
stream id from 0 to 2**64 - 1) and are ASCII digits of bounded length: an id out of range
is unknown (``reset`` for a resume, 422 for ``before``), a bad number a 422 naming its
field, a path uri no item can have a 404; never a 5xx, never a stream without a body."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.helpers import ops_headers
from tests.redis_data import stream_len
from tests.sse import start_reader
from ticker.settings import Settings

pytestmark = pytest.mark.anyio

TOO_BIG_IDS = [
    "18446744073709551616-0",  # 2**64
    "0-18446744073709551616",
    "99999999999999999999-0",
    "18446744073709551616-18446744073709551616",
]
BAD_NUMBERS = [
    "\u00b2",
    "\u0661",
    "\uff15",
    "9" * 5000,
    "1" + "0" * 30,
    "-1",
    "0",
    "+5",
    " 5",
    "5 ",
    "5.0",
    "0x5",
    "",
    "1e2",
    "٥",
]


@pytest.mark.parametrize("entry_id", TOO_BIG_IDS)
async def test_a_last_event_id_beyond_redis_range_gets_a_reset(
    server: tuple[str, Any], token: str, entry_id: str
) -> None:
    async with httpx.AsyncClient(base_url=server[0], timeout=5) as http:
        item = (
            await http.post(
                "/channels/en/items",
                json={"headline": "current"},
                headers={"Authorization": f"Bearer {token}"},
            )
        ).json()
    url = f"{server[0]}/channels/en/events"
    by_header = start_reader(url, headers={"Last-Event-ID": entry_id})
    by_query = start_reader(url, params={"last_event_id": entry_id})
    try:
        for reader in (by_header, by_query):
            await reader.wait_for(lambda r: len(r.events) >= 2)
            assert reader.status == 200
            assert [e.event for e in reader.events[:2]] == ["reset", "item"]
            assert reader.of("item")[0]["id"] == item["id"]
            assert not reader.ended.is_set()
    finally:
        await by_header.close()
        await by_query.close()


async def test_the_largest_stream_id_is_a_valid_cursor(server: tuple[str, Any]) -> None:
    largest = f"{2**64 - 1}-{2**64 - 1}"
    async with httpx.AsyncClient(base_url=server[0], timeout=5) as http:
        for before in (largest, "0-0", "0-1"):
            r = await http.get("/channels/en/items", params={"history": "true", "before": before})
            assert r.status_code == 200, (before, r.text)
            assert r.json()["next_before"] is None
    reader = start_reader(f"{server[0]}/channels/en/events", headers={"Last-Event-ID": largest})
    try:
        await reader.wait_for(lambda r: len(r.events) >= 1)
        assert reader.events[0].event == "reset"
    finally:
        await reader.close()


async def test_a_before_beyond_redis_range_is_422_naming_the_field(server: tuple[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=server[0], timeout=5) as http:
        for before in [*TOO_BIG_IDS, "1\u00b2-0", "١٧٣٢٦٤٠٠٠٠٠٠٠-0", "1-", "-1", "1-2-3"]:
            r = await http.get("/channels/en/items", params={"history": "true", "before": before})
            assert r.status_code == 422, (before, r.status_code, r.text)
            assert r.json()["details"][0]["field"] == "before"
            assert "retry-after" not in r.headers  # not counted as a Redis error


@pytest.mark.parametrize("value", BAD_NUMBERS)
async def test_numbers_that_are_not_plain_ascii_digits_in_range_get_422(
    server: tuple[str, Any], value: str
) -> None:
    async with asyncio.timeout(20), httpx.AsyncClient(base_url=server[0], timeout=5) as http:
        limit = await http.get("/channels/en/items", params={"history": "true", "limit": value})
        # A stream, if it wrongly opens one: read its status, never its endless body.
        async with http.stream(
            "GET", "/channels/en/events", params={"max_urgency": value}
        ) as urgency:
            if urgency.status_code != 200:
                await urgency.aread()
    assert urgency.status_code != 200, f"max_urgency={value[:20]!r} opened a stream"
    for r, field in ((limit, "limit"), (urgency, "max_urgency")):
        assert r.status_code == 422, (field, value[:20], r.status_code, r.text[:200])
        assert r.headers["content-type"] == "application/json"
        body = r.json()
        assert body["error"] == "invalid_request"
        assert body["details"] == [{"field": field, "message": body["details"][0]["message"]}]


async def test_history_takes_true_or_false_only(server: tuple[str, Any]) -> None:
    async with httpx.AsyncClient(base_url=server[0], timeout=5) as http:
        r = await http.get("/channels/en/items", params={"history": "tru\u0435"})
    assert r.status_code == 422
    assert r.json()["details"][0]["field"] == "history"


BAD_URIS = [
    "x" * 5000,
    "%ff",
    "%00",
    "a%0Ab",
    "a%0D%0Ab",
    ".hidden",
    "-x",
    "a%20b",
    "%ED%A0%80",
    "\u00e9t\u00e9",
    "x" * 65,
    "a%09",
]


async def test_an_item_uri_no_item_can_have_is_404_for_reads_and_writes(
    server: tuple[str, Any], settings: Settings, token: str
) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    before = stream_len(settings)
    async with httpx.AsyncClient(base_url=server[0], timeout=5, headers=auth) as http:
        for uri in BAD_URIS:
            for method in ("GET", "PATCH", "DELETE"):
                body = {"headline": "x"} if method == "PATCH" else None
                r = await http.request(method, f"/channels/en/items/{uri}", json=body)
                assert r.status_code == 404, (method, uri[:20], r.status_code, r.text[:200])
                assert r.json()["error"] == "not_found"
    assert stream_len(settings) == before


async def test_out_of_range_ids_are_not_redis_errors(
    server: tuple[str, Any], settings: Settings
) -> None:
    """Nothing here is an outage: /metrics counts no Redis error."""
    async with httpx.AsyncClient(base_url=server[0], timeout=5) as http:
        await asyncio.gather(
            *(
                http.get("/channels/en/items", params={"history": "true", "before": entry_id})
                for entry_id in TOO_BIG_IDS
            )
        )
        metrics = (await http.get("/metrics", headers=ops_headers(settings))).text
    errors = [line for line in metrics.splitlines() if line.startswith("ticker_redis_errors_total")]
    assert errors == ["ticker_redis_errors_total 0.0"], errors
