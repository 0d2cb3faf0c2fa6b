"""/metrics and /stats are private: an ``ops`` token reads them, and that is all it does; a
chief reads them too. Without a working token they answer 404, as if absent; a viewer or
an editor gets 403."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli_helpers import admin_env, run, server_env
from tests.helpers import TickerProcess, bearer, make_token
from tests.redis_data import rdb
from ticker.cli.console import AUTH
from ticker.newsroom.auth import digest
from ticker.settings import Settings

pytestmark = pytest.mark.anyio

OPS_PAGES = ("/metrics", "/stats")


async def test_ops_pages_answer_an_ops_token_and_are_absent_to_anyone_else(
    server: tuple[str, Any], settings: Settings
) -> None:
    ops = make_token(settings, "prometheus", ["*"], role="ops")
    desk = {
        role: make_token(settings, f"desk-{role}", ["*"], role=role)
        for role in ("viewer", "editor")
    }
    async with httpx.AsyncClient(base_url=server[0], timeout=10) as http:
        absent = await http.get("/no-such-page")
        assert absent.status_code == 404
        chief = make_token(settings, "desk-chief", ["en"], role="chief")
        for secret in (ops, chief):
            metrics = await http.get("/metrics", headers=bearer(secret))
            assert metrics.status_code == 200 and "ticker_readers" in metrics.text
            stats = await http.get("/stats", headers=bearer(secret))
            assert stats.status_code == 200 and "_fleet" in stats.json()
        for page in OPS_PAGES:
            # No token, a wrong one, a malformed header: the same answer as no such page.
            for headers in ({}, bearer("tk_not-a-token"), {"Authorization": "Basic eDp5"}):
                r = await http.get(page, headers=headers)
                assert (r.status_code, r.json()) == (404, absent.json()), (page, headers)
                assert "www-authenticate" not in r.headers
            for role, secret in desk.items():
                r = await http.get(page, headers=bearer(secret))
                assert r.status_code == 403, (page, role)
                assert r.json()["error"] == "forbidden" and "ops" in r.json()["message"]


async def test_an_ops_token_reads_no_channel_and_writes_nothing_uncounted(
    server: tuple[str, Any], token: str, settings: Settings
) -> None:
    ops = make_token(settings, "prometheus", ["*"], role="ops")
    async with httpx.AsyncClient(base_url=server[0], timeout=10) as http:
        uri = (
            await http.post(
                "/channels/en/items", json={"headline": "On air"}, headers=bearer(token)
            )
        ).json()["uri"]
        refused = [
            await http.get("/channels/en/items", headers=bearer(ops)),
            await http.get(f"/channels/en/items/{uri}", headers=bearer(ops)),
            await http.get("/channels/en/queue", headers=bearer(ops)),
            await http.get("/channels/en/audit", headers=bearer(ops)),
            await http.post("/channels/en/items", json={"headline": "x"}, headers=bearer(ops)),
            await http.patch(
                f"/channels/en/items/{uri}", json={"headline": "y"}, headers=bearer(ops)
            ),
            await http.delete(f"/channels/en/items/{uri}", headers=bearer(ops)),
            await http.post(
                f"/channels/en/items/{uri}/purge", json={"reason": "z"}, headers=bearer(ops)
            ),
        ]
        assert [r.status_code for r in refused] == [403] * len(refused), [r.text for r in refused]
        # Nothing changed, and the public view is still there without a token.
        items = (await http.get("/channels/en/items")).json()["items"]
        assert [(i["uri"], i["headline"]) for i in items] == [(uri, "On air")]
    client = rdb(settings)
    try:  # a refused write is not counted against the token's rate
        assert client.exists(f"{settings.key_prefix}:{{auth}}:rate:{digest(ops)}") == 0
    finally:
        client.close()


def test_token_create_makes_an_ops_token_that_ticker_stats_uses(
    settings: Settings, tmp_path: Path, ticker_server: TickerProcess
) -> None:
    made = run(
        admin_env(settings, tmp_path), "token", "create", "scraper", "--role", "ops", "-c", "*"
    )
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip().splitlines()[-1]
    listed = run(admin_env(settings, tmp_path), "token", "ls", "--json")
    assert {t["name"]: t["role"] for t in json.loads(listed.stdout)["tokens"]}["scraper"] == "ops"
    stats = run(server_env(ticker_server, tmp_path, TICKER_TOKEN=secret), "stats", "--json")
    assert stats.returncode == 0, stats.stderr
    assert "_fleet" in json.loads(stats.stdout)
    # An editor's token is refused, with the auth exit code and the reason.
    refused = run(server_env(ticker_server, tmp_path), "stats")
    assert refused.returncode == AUTH and "ops" in refused.stderr
