"""Purge, the legal takedown: every text of an item leaves every Redis key of the service,
one audit record without text stays, readers drop it, and only a chief may do it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from typing import Any

import httpx
import pytest

from tests.helpers import make_token
from tests.redis_data import keys_holding, rdb, stream_len
from tests.sse import start_reader
from ticker.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def chief(settings: Settings) -> str:
    return make_token(settings, "chief", ["en"], role="chief")


async def _item_with_a_full_history(api: httpx.AsyncClient) -> tuple[dict[str, Any], str]:
    """An item posted with an Idempotency-Key, corrected, held and released."""
    text = f"Libel-{uuid.uuid4().hex[:8]}"
    r = await api.post(
        "/channels/en/items",
        json={"headline": f"{text} first", "source": f"{text} source"},
        headers={"Idempotency-Key": f"key-{text}"},
    )
    assert r.status_code == 201
    item = r.json()
    path = f"/channels/en/items/{item['uri']}"
    for body in ({"headline": f"{text} second"}, {"status": "withheld"}, {"status": "usable"}):
        assert (await api.patch(path, json=body)).status_code == 200
    return item, text


async def test_purge_removes_every_text_from_every_key_and_keeps_an_audit_record(
    server: tuple[str, Any], token: str, chief: str, settings: Settings
) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server[0], headers=auth, timeout=10) as api:
        item, text = await _item_with_a_full_history(api)
        other = (await api.post("/channels/en/items", json={"headline": "Keep me"})).json()
        assert keys_holding(settings, text)  # the check can see the text before
        reader = start_reader(f"{server[0]}/channels/en/events")
        try:
            await reader.wait_for(lambda r: len(r.of("item")) == 2)
            r = await api.post(
                f"/channels/en/items/{item['uri']}/purge",
                json={"reason": "court order 12/2026"},
                headers={"Authorization": f"Bearer {chief}"},
            )
            assert r.status_code == 200, r.text
            # The test Redis keeps no AOF: the reply says so (tests/test_purge_disk.py).
            disk = {"aof": "off", "rewrite_due_at": None}
            assert r.json() == {"uri": item["uri"], "purged": True, "disk": disk}
            # Readers that have it on screen drop it.
            gone = {"uri": item["uri"], "reason": "kill"}
            await reader.wait_for(lambda r: gone in r.of("remove"))
        finally:
            await reader.close()

        assert keys_holding(settings, text) == []
        path = f"/channels/en/items/{item['uri']}"
        async with httpx.AsyncClient(base_url=server[0], timeout=10) as anonymous:
            for r in (await api.get(path), await anonymous.get(path)):
                assert r.status_code == 404 and text not in r.text
        # The rest of the channel is untouched.
        r = await api.get(f"/channels/en/items/{other['uri']}")
        assert r.status_code == 200 and r.json()["headline"] == "Keep me"
        # A retried post with the same key does not bring the text back from a reply.
        r = await api.post(
            "/channels/en/items",
            json={"headline": f"{text} first", "source": f"{text} source"},
            headers={"Idempotency-Key": f"key-{text}"},
        )
        assert r.status_code == 201 and r.json()["uri"] != item["uri"]

    client = rdb(settings)
    try:
        audit = json.loads(client.hget(f"{settings.key_prefix}:{{en}}:purged", item["uri"]))
    finally:
        client.close()
    assert audit["uri"] == item["uri"] and audit["purged_by"] == "chief"
    assert audit["reason"] == "court order 12/2026" and audit["purged_at"]
    assert text not in json.dumps(audit)


async def test_a_second_purge_answers_the_same_and_writes_nothing(
    server: tuple[str, Any], token: str, chief: str, settings: Settings
) -> None:
    async with httpx.AsyncClient(
        base_url=server[0], headers={"Authorization": f"Bearer {chief}"}, timeout=10
    ) as api:
        item = (await api.post("/channels/en/items", json={"headline": "Twice"})).json()
        path = f"/channels/en/items/{item['uri']}/purge"
        first = await api.post(path, json={"reason": "takedown"})
        length = stream_len(settings)
        second = await api.post(path, json={"reason": "takedown again"})
        assert first.status_code == second.status_code == 200
        assert first.json() == second.json()
        assert first.json()["uri"] == item["uri"] and first.json()["purged"] is True
        assert stream_len(settings) == length


@pytest.mark.parametrize(
    ("who", "uri", "body", "status", "error"),
    [
        ("editor", "known", {"reason": "x"}, 403, "forbidden"),
        ("chief", "unknown", {"reason": "x"}, 404, "not_found"),
        ("chief", "known", {}, 422, "invalid_request"),
        ("chief", "known", {"reason": ""}, 422, "invalid_request"),
        ("chief", "known", {"reason": "   "}, 422, "invalid_request"),
        ("chief", "known", {"reason": "x" * 501}, 422, "invalid_request"),
        ("chief", "known", {"reason": "two\nlines"}, 422, "invalid_request"),
        ("chief", "known", {"reason": 42}, 422, "invalid_request"),
        ("chief", "known", {"reason": "x", "extra": 1}, 422, "invalid_request"),
        ("chief", "known", None, 400, "malformed_body"),
        ("nobody", "known", {"reason": "x"}, 401, "unauthorized"),
    ],
)
async def test_a_bad_purge_is_refused_clearly_and_writes_nothing(
    server: tuple[str, Any],
    token: str,
    chief: str,
    settings: Settings,
    who: str,
    uri: str,
    body: Any,
    status: int,
    error: str,
) -> None:
    secrets = {"editor": token, "chief": chief, "nobody": "tk_nobody"}
    async with httpx.AsyncClient(base_url=server[0], timeout=10) as http:
        r = await http.post(
            "/channels/en/items",
            json={"headline": "Still here"},
            headers={"Authorization": f"Bearer {token}"},
        )
        item = r.json()
        length = stream_len(settings)
        target = item["uri"] if uri == "known" else "nosuchitem"
        r = await http.post(
            f"/channels/en/items/{target}/purge",
            content=b"{not json" if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {secrets[who]}", "Content-Type": "application/json"},
        )
        assert r.status_code == status, r.text
        assert r.json()["error"] == error
        assert stream_len(settings) == length
        r = await http.get(f"/channels/en/items/{item['uri']}")
        assert r.status_code == 200 and r.json()["headline"] == "Still here"


async def test_ticker_purge_on_the_command_line(
    server: tuple[str, Any], chief: str, settings: Settings
) -> None:
    async with httpx.AsyncClient(base_url=server[0], timeout=10) as api:
        r = await api.post(
            "/channels/en/items",
            json={"headline": "From the CLI"},
            headers={"Authorization": f"Bearer {chief}"},
        )
        uri = r.json()["uri"]
    env = {"TICKER_URL": server[0], "TICKER_TOKEN": chief, "PATH": "/usr/bin:/bin"}
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "ticker", "purge", uri, "--channel", "en", "--reason", "legal"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"purged {uri}" in proc.stdout
    # The test Redis keeps no AOF (the rewrite itself: tests/test_purge_disk.py).
    assert "Redis keeps no append-only file: nothing on disk to rewrite" in proc.stdout
    assert chief not in proc.stdout + proc.stderr
    assert keys_holding(settings, "From the CLI") == []


async def test_a_purged_pin_frees_its_slot_and_a_purged_hold_leaves_the_queue(
    server: tuple[str, Any], chief: str
) -> None:
    async with httpx.AsyncClient(
        base_url=server[0], headers={"Authorization": f"Bearer {chief}"}, timeout=10
    ) as api:
        pins = [
            (await api.post("/channels/en/items", json={"headline": f"pin {n}", "pinned": True}))
            for n in range(3)
        ]
        assert [r.status_code for r in pins] == [201, 201, 201]
        held = (
            await api.post("/channels/en/items", json={"headline": "held", "status": "withheld"})
        ).json()
        for uri in (pins[0].json()["uri"], held["uri"]):
            r = await api.post(f"/channels/en/items/{uri}/purge", json={"reason": "legal"})
            assert r.status_code == 200
        fourth = await api.post("/channels/en/items", json={"headline": "pin 4", "pinned": True})
        assert fourth.status_code == 201, fourth.text  # the purged pin no longer counts
        queue = await api.get("/channels/en/queue")
        assert queue.status_code == 200
        assert held["uri"] not in queue.text and "held" not in [
            i["headline"] for i in queue.json()["items"]
        ]
