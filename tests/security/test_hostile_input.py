"""Hostile input: SSE injection from the stream, random Unicode through the whole path,
and a fuzz run of malformed writes. Nothing gets in, nothing breaks the framing."""

from __future__ import annotations

import asyncio
import json
import random
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
import redis
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tests.sse import start_reader
from ticker.domain.models import utcnow
from ticker.settings import Settings

pytestmark = pytest.mark.anyio


def parse_sse(raw: bytes) -> list[dict[str, str]]:
    """A WHATWG event-stream parser: CR, LF and CRLF end lines; a blank line dispatches."""
    text = raw.decode("utf-8")
    text = text.removeprefix("\ufeff")
    events: list[dict[str, str]] = []
    data: list[str] = []
    event: dict[str, str] = {}
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for line in lines:
        if line == "":
            if data:
                event["data"] = "\n".join(data)
                events.append(event)
            data, event = [], {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name in ("event", "id") and "\x00" not in value:
            event[name] = value
    return events


def stream_key(settings: Settings, channel: str = "en") -> str:
    return f"{settings.key_prefix}:{{{channel}}}:events"


async def test_text_with_line_breaks_written_into_the_stream_goes_out_as_one_event(
    server: tuple[str, Any], settings: Settings, token: str
) -> None:
    """Another service writes straight into the stream, bypassing the API."""
    async with httpx.AsyncClient(base_url=server[0], timeout=5) as http:
        marker = (
            await http.post(
                "/channels/en/items",
                json={"headline": "marker"},
                headers={"Authorization": f"Bearer {token}"},
            )
        ).json()
    reader = start_reader(
        f"{server[0]}/channels/en/events", headers={"Last-Event-ID": marker["id"]}
    )
    await reader.wait_for(lambda r: r.status == 200)
    now = utcnow()
    hostile = "A\r\n\r\nevent: spoof\nid: 9-9\rretry: 1\x00 end"
    item = {
        "uri": "inj",
        "channel": "en",
        "version": 1,
        "headline": hostile,
        "source": "x\n\ndata: y",
        "language": "en",
        "created_at": now.isoformat(),
        "updated_at": now.isoformat(),
        "expires_at": (now + timedelta(minutes=5)).isoformat(),
        "author": "other-service",
    }
    assert settings.redis_url is not None
    client = redis.Redis.from_url(settings.redis_url.get_secret_value(), decode_responses=True)
    entry_id = client.xadd(
        stream_key(settings), {"v": "1", "type": "item", "uri": "inj", "item": json.dumps(item)}
    )
    client.xadd(
        stream_key(settings),
        {"v": "1", "type": "remove", "uri": "x", "reason": "kill\r\nevent: spoof"},
    )
    client.close()
    try:
        await reader.wait_for(lambda r: len(r.events) >= 1)
        # The raw bytes of a replay, through a strict parser of our own as well.
        raw = b""
        async with (
            asyncio.timeout(10),
            httpx.AsyncClient(timeout=5) as http,
            http.stream(
                "GET", f"{server[0]}/channels/en/events", headers={"Last-Event-ID": marker["id"]}
            ) as response,
        ):
            async for chunk in response.aiter_bytes():
                raw += chunk
                if b"data: y" in raw and raw.endswith(b"\n\n"):
                    break
        events = [e for e in parse_sse(raw) if e.get("event") == "item"]
        assert len(events) == 1
        assert events[0]["id"] == entry_id
        assert json.loads(events[0]["data"])["headline"] == hostile
        await asyncio.sleep(0.3)
        assert [e.event for e in reader.events] == ["item"]  # the bad remove was dropped
        assert json.loads(reader.events[0].data)["source"] == "x\n\ndata: y"
    finally:
        await reader.close()


HEADLINE_CHARS = st.characters(codec=None, exclude_categories=())
SPECIALS = [
    "\u2028",
    "\u2029",
    "\u0085",
    "\u200f",
    "\u202e",
    "\U0001f4f0",
    "\ufeff",
    "\r",
    "\n",
    "\x00",
    "\x1b",
    "\ud800",
    "\udfff",
    "\u00a0",
    "\t",
]


@pytest.fixture
def ticker_server_env() -> dict[str, str]:
    return {
        "TICKER_CHANNELS": json.dumps(
            [{"name": "en", "live_max_items": 500, "history_max_items": 20000}]
        )
    }


@pytest.mark.timeout(180)
def test_random_unicode_headlines_arrive_identical_or_get_4xx(ticker_server: Any) -> None:
    marker = ticker_server.post("en", headline="before the property run")
    accepted: list[tuple[str, str]] = []
    rejected = 0
    with httpx.Client(
        base_url=ticker_server.url,
        timeout=10,
        headers={"Authorization": f"Bearer {ticker_server.token}"},
    ) as client:

        @hsettings(
            max_examples=1000,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(
            st.lists(st.one_of(HEADLINE_CHARS, st.sampled_from(SPECIALS)), max_size=300).map(
                "".join
            )
        )
        def post(headline: str) -> None:
            nonlocal rejected
            # ensure_ascii escapes lone surrogates, as a browser's JSON.stringify would.
            r = client.post(
                "/channels/en/items",
                # "force": generated headlines may repeat once normalized (dupes.py).
                content=json.dumps({"headline": headline, "force": True}),
                headers={"Content-Type": "application/json"},
            )
            assert r.status_code in (201, 422), r.text
            if r.status_code == 201:
                # What the JSON text means: an escaped surrogate pair is one code point.
                accepted.append((r.json()["id"], json.loads(json.dumps(headline)).strip()))
            else:
                rejected += 1

        post()
        raw = b""
        with client.stream(
            "GET", "/channels/en/events", headers={"Last-Event-ID": marker["id"]}
        ) as response:
            deadline = time.monotonic() + 30
            for chunk in response.iter_bytes():
                raw += chunk
                done = accepted[-1][0].encode() in raw and raw.endswith(b"\n\n")
                if done or time.monotonic() > deadline:
                    break
    got = {
        e["id"]: json.loads(e["data"])["headline"]
        for e in parse_sse(raw)
        if e.get("event") == "item"
    }
    # Both outcomes are exercised (about a fifth of the examples are accepted).
    assert len(accepted) > 100 and rejected > 100, (len(accepted), rejected)
    assert [got.get(i) for i, _ in accepted] == [h for _, h in accepted]


# Every field a write reads, with every wrongly typed or out-of-range value: the fuzz run
# sends each pair once, then random mutations.
FIELDS = [
    "urgency",
    "regions",
    "link",
    "source",
    "ttl",
    "expires_at",
    "categories",
    "language",
    "status",
    "embargoed_until",
]
BAD_VALUES = [
    None,
    0,
    -1,
    10**30,
    1.5,
    True,
    [],
    {},
    [1, 2],
    "",
    "\x00",
    "javascript:alert(1)",
    "9999-99-99",
    {"$ne": 1},
    "x" * 5000,
]
BAD_FIELDS = [(field, value) for field in FIELDS for value in BAD_VALUES]


# A valid write, which each mutation breaks one way.
GOOD: dict[str, Any] = {"headline": "ok", "urgency": 2, "regions": ["europe"]}


def _bad_field(field: str, value: Any) -> bytes:
    # An empty headline keeps every such body invalid while its other field is parsed.
    return json.dumps({**GOOD, "headline": "", field: value}).encode()


def _mutations(rng: random.Random) -> tuple[bytes, str]:
    """One malformed, oversized, wrongly typed or wrongly encoded request body."""
    kind = rng.randrange(12)
    ctype = "application/json"
    if kind == 0:
        body = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 200)))
    elif kind == 1:
        body = json.dumps(GOOD).encode()[: rng.randrange(1, 20)]
    elif kind == 2:
        body = json.dumps({**GOOD, "headline": "x" * rng.randrange(281, 20000)}).encode()
    elif kind == 3:
        body = _bad_field(*rng.choice(BAD_FIELDS))
    elif kind == 4:
        body = json.dumps({**GOOD, f"extra{rng.randrange(100)}": 1}).encode()
    elif kind == 5:
        body = json.dumps(GOOD).encode("utf-16")
    elif kind == 6:
        body, ctype = (
            json.dumps(GOOD).encode(),
            rng.choice(
                [
                    "text/plain",
                    "application/x-www-form-urlencoded",
                    "multipart/form-data",
                    "application/json; charset=latin-1",
                    "",
                ]
            ),
        )
    elif kind == 7:
        body = json.dumps([GOOD]).encode()
    elif kind == 8:
        body = b"{" * rng.randrange(1, 20000)
    elif kind == 9:
        body = json.dumps({**GOOD, "headline": "line\nbreak"}).encode()
    elif kind == 10:
        body = b'{"headline": "\\ud800"}'
    else:
        body = json.dumps({**GOOD, "urgency": str(rng.randrange(1, 9))}).encode()
    return body, ctype


@pytest.mark.timeout(240)
def test_three_thousand_malformed_writes_get_4xx_and_write_nothing(
    ticker_server: Any, settings: Settings
) -> None:
    rng = random.Random(20261126)
    statuses: dict[int, int] = {}
    auth = {"Authorization": f"Bearer {ticker_server.token}"}
    item = ticker_server.post("en", headline="the one real item")
    assert settings.redis_url is not None
    before = redis.Redis.from_url(settings.redis_url.get_secret_value()).xlen(stream_key(settings))
    with httpx.Client(base_url=ticker_server.url, timeout=10) as client:
        # Each bad field once, then random mutations (scripts/fuzz.py sends 10,000 more
        # kinds of request to a running server, outside the suite).
        for n in range(3_000):
            if n < len(BAD_FIELDS):
                body, ctype = _bad_field(*BAD_FIELDS[n]), "application/json"
            else:
                body, ctype = _mutations(rng)
            target = rng.choice(
                [("POST", "/channels/en/items"), ("PATCH", f"/channels/en/items/{item['uri']}")]
            )
            headers = {**auth, **({"Content-Type": ctype} if ctype else {})}
            if n % 50 == 0:
                headers.pop("Authorization")
            r = client.request(target[0], target[1], content=body, headers=headers)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            assert 400 <= r.status_code < 500, (n, r.status_code, body[:80], r.text[:200])
            assert r.json()["error"]
    client_redis = redis.Redis.from_url(settings.redis_url.get_secret_value())
    assert client_redis.xlen(stream_key(settings)) == before
    client_redis.close()
    print("fuzz statuses:", dict(sorted(statuses.items())))
