"""The write and read API against a real Redis and a real uvicorn: happy paths and every
bad input, checking the status, the JSON error, and that nothing reached the stream."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.helpers import make_token
from tests.redis_data import stream_len
from ticker.settings import Settings

pytestmark = pytest.mark.anyio

HEADLINE = "Dutch Police: Rotterdam shooter arrested"


async def test_post_returns_the_item_and_lists_it(api: httpx.AsyncClient) -> None:
    r = await api.post(
        "/channels/en/items",
        json={
            "headline": f"  {HEADLINE}  ",
            "source": "Dutch Police",
            "urgency": 2,
            "regions": ["europe"],
            "link": "https://example.com/a",
        },
    )
    assert r.status_code == 201, r.text
    item = r.json()
    assert item["headline"] == HEADLINE  # trimmed
    assert item["version"] == 1 and item["status"] == "usable" and item["language"] == "en"
    assert item["author"] == "editor" and item["regions"] == ["europe"]
    assert r.headers["location"] == f"/channels/en/items/{item['uri']}"
    listed = (await api.get("/channels/en/items")).json()["items"]
    assert [i["uri"] for i in listed] == [item["uri"]]
    assert listed[0]["id"] == item["id"]
    fetched = (await api.get(f"/channels/en/items/{item['uri']}")).json()
    assert fetched.pop("versions") == [item]
    assert fetched.pop("reach") == 0  # no reader yet
    assert fetched == item


async def test_items_are_listed_newest_first(api: httpx.AsyncClient) -> None:
    uris = [
        (await api.post("/channels/en/items", json={"headline": f"h{n}"})).json()["uri"]
        for n in range(3)
    ]
    listed = (await api.get("/channels/en/items")).json()["items"]
    assert [i["uri"] for i in listed] == uris[::-1]


async def test_correct_hold_release_kill(api: httpx.AsyncClient) -> None:
    uri = (await api.post("/channels/en/items", json={"headline": "Shooter at large"})).json()[
        "uri"
    ]
    r = await api.patch(f"/channels/en/items/{uri}", json={"headline": "Shooter arrested"})
    assert r.status_code == 200 and r.json()["version"] == 2
    assert r.json()["headline"] == "Shooter arrested"
    held = (await api.patch(f"/channels/en/items/{uri}", json={"status": "withheld"})).json()
    assert held["status"] == "withheld"
    assert (await api.get("/channels/en/items")).json()["items"] == []
    released = (await api.patch(f"/channels/en/items/{uri}", json={"status": "usable"})).json()
    assert released["version"] == 4
    assert [i["uri"] for i in (await api.get("/channels/en/items")).json()["items"]] == [uri]
    killed = await api.delete(f"/channels/en/items/{uri}")
    assert killed.status_code == 200 and killed.json()["status"] == "canceled"
    assert (await api.get("/channels/en/items")).json()["items"] == []
    again = await api.delete(f"/channels/en/items/{uri}")
    assert again.status_code == 200 and again.json()["version"] == killed.json()["version"]


async def test_idempotent_retry_returns_the_first_item(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    headers = {"Idempotency-Key": "retry-42"}
    first = await api.post("/channels/en/items", json={"headline": HEADLINE}, headers=headers)
    second = await api.post("/channels/en/items", json={"headline": HEADLINE}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    assert stream_len(settings) == 1
    other = await api.post("/channels/en/items", json={"headline": "different"}, headers=headers)
    assert other.status_code == 422 and other.json()["error"] == "idempotency_key_reused"
    assert stream_len(settings) == 1


BAD_ITEMS: list[tuple[str, Any, str]] = [
    ("empty headline", {"headline": ""}, "headline"),
    ("whitespace headline", {"headline": "   \t "}, "headline"),
    ("headline over 280", {"headline": "x" * 281}, "headline"),
    ("headline with LF", {"headline": "one\ntwo"}, "headline"),
    ("headline with CR", {"headline": "one\rtwo"}, "headline"),
    ("headline with NUL", {"headline": "one\x00two"}, "headline"),
    ("headline with ESC", {"headline": "one\x1b[31mtwo"}, "headline"),
    ("headline with NEL", {"headline": "one\x85two"}, "headline"),
    ("headline with U+2028", {"headline": "one\u2028two"}, "headline"),
    ("headline missing", {"source": "x"}, "headline"),
    ("headline not a string", {"headline": 42}, "headline"),
    ("source with LF", {"headline": "ok", "source": "a\nb"}, "source"),
    ("source over 80", {"headline": "ok", "source": "s" * 81}, "source"),
    ("urgency 0", {"headline": "ok", "urgency": 0}, "urgency"),
    ("urgency 10", {"headline": "ok", "urgency": 10}, "urgency"),
    ("urgency high", {"headline": "ok", "urgency": "high"}, "urgency"),
    ("urgency as string number", {"headline": "ok", "urgency": "2"}, "urgency"),
    ("urgency true", {"headline": "ok", "urgency": True}, "urgency"),
    ("urgency float", {"headline": "ok", "urgency": 2.5}, "urgency"),
    ("javascript link", {"headline": "ok", "link": "javascript:alert(1)"}, "link"),
    ("relative link", {"headline": "ok", "link": "/news/1"}, "link"),
    ("link without host", {"headline": "ok", "link": "https://"}, "link"),
    ("data link", {"headline": "ok", "link": "data:text/html,<b>x</b>"}, "link"),
    ("unknown field", {"headline": "ok", "colour": "red"}, "colour"),
    ("bad region slug", {"headline": "ok", "regions": ["Europe West"]}, "regions"),
    ("regions not a list", {"headline": "ok", "regions": "europe"}, "regions"),
    ("bad language", {"headline": "ok", "language": "english!"}, "language"),
    ("status canceled on post", {"headline": "ok", "status": "canceled"}, "status"),
    ("embargo not a duration", {"headline": "ok", "embargo": "soon"}, "embargo"),
    ("embargo zero", {"headline": "ok", "embargo": "0s"}, "embargo"),
    ("embargo negative", {"headline": "ok", "embargo": -60}, "embargo"),
    ("embargo beyond the history", {"headline": "ok", "embargo": "400d"}, "embargo"),
    (
        "embargo and embargoed_until",
        {"headline": "ok", "embargo": "30m", "embargoed_until": "2099-01-01T00:00:00Z"},
        "embargo",
    ),
]


async def test_a_relative_embargo_holds_the_item_back_that_long(
    api: httpx.AsyncClient,
) -> None:
    before = datetime.now(UTC)
    r = await api.post("/channels/en/items", json={"headline": "Budget", "embargo": "30m"})
    assert r.status_code == 201, r.text
    release = datetime.fromisoformat(r.json()["embargoed_until"])
    assert before + timedelta(minutes=30) <= release <= datetime.now(UTC) + timedelta(minutes=30)
    assert (await api.get("/channels/en/items")).json()["items"] == []
    queued = (await api.get("/channels/en/queue")).json()["items"]
    assert [i["uri"] for i in queued] == [r.json()["uri"]]


@pytest.mark.parametrize(("case", "body", "field"), BAD_ITEMS, ids=[c[0] for c in BAD_ITEMS])
async def test_bad_item_is_refused_with_the_field_named(
    api: httpx.AsyncClient, settings: Settings, case: str, body: Any, field: str
) -> None:
    r = await api.post("/channels/en/items", json=body)
    assert r.status_code == 422, r.text
    error = r.json()
    assert error["error"] == "invalid_request"
    assert any(d["field"].startswith(field) for d in error["details"]), error
    assert stream_len(settings) == 0


@pytest.mark.parametrize(
    ("content", "ctype", "status"),
    [
        (b"not json", "application/json", 400),
        (b'{"headline": "ok"', "application/json", 400),
        (b"\xff\xfe{}", "application/json", 400),
        (b"[" * 5000 + b"]" * 5000, "application/json", 400),
        (b'["headline"]', "application/json", 422),
        (b'"headline"', "application/json", 422),
        (b"null", "application/json", 422),
        (b'{"headline": "ok"}', "text/plain", 415),
        (b'{"headline": "ok"}', "application/x-www-form-urlencoded", 415),
        (b'{"headline": "ok"}', "application/json; charset=latin-1", 415),
        (b'{"headline": "' + b"x" * 17000 + b'"}', "application/json", 413),
    ],
    ids=[
        "not-json",
        "truncated",
        "not-utf8",
        "deep-nesting",
        "array",
        "string",
        "null",
        "text-plain",
        "form",
        "latin1",
        "over-16k",
    ],
)
async def test_malformed_body_is_refused(
    api: httpx.AsyncClient, settings: Settings, content: bytes, ctype: str, status: int
) -> None:
    r = await api.post("/channels/en/items", content=content, headers={"Content-Type": ctype})
    assert r.status_code == status, r.text
    assert r.json()["message"]
    assert stream_len(settings) == 0


async def test_missing_content_type_is_415(api: httpx.AsyncClient, settings: Settings) -> None:
    r = await api.post("/channels/en/items", content=b'{"headline": "ok"}')
    assert r.status_code == 415
    assert stream_len(settings) == 0


async def test_unknown_channel_and_uri_are_404(api: httpx.AsyncClient) -> None:
    r = await api.post("/channels/fr/items", json={"headline": "ok"})
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    assert (await api.get("/channels/fr/items")).status_code == 404
    assert (await api.get("/channels/fr/events")).status_code == 404
    r = await api.patch("/channels/en/items/nosuchuri", json={"headline": "x"})
    assert r.status_code == 404 and "nosuchuri" in r.json()["message"]
    assert (await api.delete("/channels/en/items/nosuchuri")).status_code == 404


async def test_correcting_a_killed_item_is_409(api: httpx.AsyncClient, settings: Settings) -> None:
    uri = (await api.post("/channels/en/items", json={"headline": "x"})).json()["uri"]
    await api.delete(f"/channels/en/items/{uri}")
    before = stream_len(settings)
    r = await api.patch(f"/channels/en/items/{uri}", json={"headline": "back from the dead"})
    assert r.status_code == 409 and r.json()["error"] == "killed"
    assert stream_len(settings) == before


@pytest.mark.parametrize(
    "body", [{}, {"headline": None}, {"status": "canceled"}, {"urgency": 11}, {"nope": 1}]
)
async def test_bad_correction_is_422(api: httpx.AsyncClient, settings: Settings, body: Any) -> None:
    uri = (await api.post("/channels/en/items", json={"headline": "x"})).json()["uri"]
    r = await api.patch(f"/channels/en/items/{uri}", json=body)
    assert r.status_code == 422, r.text
    assert stream_len(settings) == 1


@pytest.mark.parametrize(
    "auth", [None, "Bearer", "Bearer wrong", "Basic dXNlcjpwYXNz", "tk_nobearer"]
)
async def test_missing_or_wrong_token_is_401(
    server: tuple[str, Any], settings: Settings, auth: str | None
) -> None:
    headers = {"Authorization": auth} if auth else {}
    async with httpx.AsyncClient(base_url=server[0], timeout=10) as client:
        r = await client.post("/channels/en/items", json={"headline": "x"}, headers=headers)
    assert r.status_code == 401
    assert r.json()["error"] == "unauthorized"
    assert "wrong" not in r.text and "dXNlcjpwYXNz" not in r.text
    assert stream_len(settings) == 0


async def test_revoked_token_is_401_and_other_channel_is_403(
    server: tuple[str, Any], settings: Settings
) -> None:
    from ticker.newsroom.auth import Tokens
    from ticker.store import Store

    ar_only = make_token(settings, "ar-desk", ["ar"])
    async with httpx.AsyncClient(
        base_url=server[0], timeout=10, headers={"Authorization": f"Bearer {ar_only}"}
    ) as client:
        r = await client.post("/channels/en/items", json={"headline": "x"})
        assert r.status_code == 403 and r.json()["error"] == "forbidden"
        assert (await client.post("/channels/ar/items", json={"headline": "x"})).status_code == 201
        assert settings.redis_url is not None
        store = Store(settings.redis_url.get_secret_value(), prefix=settings.key_prefix)
        assert await Tokens(store).revoke("ar-desk")
        await store.close()
        r = await client.post("/channels/ar/items", json={"headline": "y"})
        assert r.status_code == 401
    assert stream_len(settings, "en") == 0
    assert stream_len(settings, "ar") == 1


async def test_write_api_sends_no_cors_but_reads_do(api: httpx.AsyncClient) -> None:
    origin = {"Origin": "https://evil.example"}
    r = await api.post("/channels/en/items", json={"headline": "x"}, headers=origin)
    assert "access-control-allow-origin" not in r.headers
    r = await api.options(
        "/channels/en/items", headers={**origin, "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in r.headers
    r = await api.get("/channels/en/items", headers=origin)
    assert r.headers["access-control-allow-origin"] == "*"


async def test_health_endpoints(api: httpx.AsyncClient) -> None:
    assert (await api.get("/livez")).json() == {"status": "ok"}
    assert (await api.get("/readyz")).json() == {"status": "ready"}
    channels = (await api.get("/channels")).json()
    assert [c["name"] for c in channels] == ["en", "ar", "es"]
    assert channels[1]["language"] == "ar"
