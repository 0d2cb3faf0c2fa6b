"""The audit: kills and purges read back (who, when, uri, a purge's reason; never text),
through the API and ``ticker audit``, on a real ``ticker serve``."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli_helpers import finish, run_all, server_env, spawn
from tests.helpers import TickerProcess, make_token
from tests.redis_data import rdb
from ticker.settings import Settings

pytestmark = pytest.mark.server_per_module


def _purge(server: TickerProcess, chief: str, uri: str, reason: str) -> None:
    r = httpx.post(
        f"{server.url}/channels/en/items/{uri}/purge",
        json={"reason": reason},
        headers={"Authorization": f"Bearer {chief}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text


def _audit(server: TickerProcess, token: str, **params: Any) -> httpx.Response:
    return httpx.get(
        f"{server.url}/channels/en/audit",
        params=params,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def _story(server: TickerProcess, chief: str) -> tuple[list[dict[str, Any]], str]:
    """Four items: A killed, B purged, C killed then purged, D left alone."""
    text = f"Audited-{uuid.uuid4().hex[:8]}"
    a, b, c, _ = (server.post("en", headline=f"{text} {n}") for n in "ABCD")
    server.kill("en", a["uri"])
    _purge(server, chief, b["uri"], "court order 7/2026")
    server.kill("en", c["uri"])
    _purge(server, chief, c["uri"], "settled")
    return [a, b, c], text


def test_kills_and_purges_are_listed_newest_first_without_text(
    ticker_server: TickerProcess, settings: Settings
) -> None:
    chief = make_token(settings, "chief", ["en"], role="chief")
    (a, b, c), text = _story(ticker_server, chief)
    r = _audit(ticker_server, ticker_server.token)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "private, no-store"
    assert text not in r.text
    body = r.json()
    assert body["channel"] == "en" and body["next_before"] is None
    records = body["records"]
    assert [(x["action"], x["uri"], x["by"], x["reason"]) for x in records] == [
        ("purge", c["uri"], "chief", "settled"),
        ("kill", c["uri"], "server-editor", None),
        ("purge", b["uri"], "chief", "court order 7/2026"),
        ("kill", a["uri"], "server-editor", None),
    ]
    assert all(re.fullmatch(r"\d{13}-\d+", x["id"]) for x in records)
    times = [x["at"] for x in records]
    assert times == sorted(times, reverse=True) and times[-1] > a["created_at"]

    # Pages: limit, then the cursor, as the history pages.
    first = _audit(ticker_server, chief, limit=3).json()
    assert first["records"] == records[:3] and first["next_before"] == records[2]["id"]
    rest = _audit(ticker_server, chief, limit=3, before=first["next_before"]).json()
    assert rest == {"channel": "en", "records": records[3:], "next_before": None}


def test_purges_recorded_before_the_audit_list_existed_are_listed_once(
    ticker_server: TickerProcess, settings: Settings
) -> None:
    chief = make_token(settings, "chief", ["en"], role="chief")
    old = [ticker_server.post("en", headline=f"Old {n}") for n in range(2)]
    for item in old:
        _purge(ticker_server, chief, item["uri"], f"old order {item['uri']}")
    # As an older ticker left it: the purges only in `purged`, no audit list.
    client = rdb(settings)
    client.delete(f"{settings.key_prefix}:{{en}}:audit")
    client.close()
    new = ticker_server.post("en", headline="New")
    ticker_server.kill("en", new["uri"])  # the first write to the list takes the old in
    records = _audit(ticker_server, chief).json()["records"]
    assert [(x["action"], x["uri"]) for x in records] == [
        ("kill", new["uri"]),
        ("purge", old[1]["uri"]),
        ("purge", old[0]["uri"]),
    ]
    assert records[1]["reason"] == f"old order {old[1]['uri']}" and records[1]["by"] == "chief"

    # A read alone takes them in too.
    client = rdb(settings)
    client.delete(f"{settings.key_prefix}:{{en}}:audit")
    client.close()
    again = _audit(ticker_server, chief).json()["records"]
    assert [x["uri"] for x in again] == [old[1]["uri"], old[0]["uri"]]


@pytest.mark.parametrize(
    ("who", "path", "params", "status", "error"),
    [
        ("nobody", "en", {}, 401, "unauthorized"),
        ("wrong", "en", {}, 401, "unauthorized"),
        ("viewer", "en", {}, 403, "forbidden"),
        ("other-channel", "en", {}, 403, "forbidden"),
        ("editor", "xx", {}, 404, "not_found"),
        ("editor", "en", {"limit": "0"}, 422, "invalid_request"),
        ("editor", "en", {"limit": "501"}, 422, "invalid_request"),
        ("editor", "en", {"limit": "ten"}, 422, "invalid_request"),
        ("editor", "en", {"limit": "٣"}, 422, "invalid_request"),
        ("editor", "en", {"before": "yesterday"}, 422, "invalid_request"),
        ("editor", "en", {"before": f"{2**64}-0"}, 422, "invalid_request"),
    ],
)
def test_a_bad_audit_read_is_refused_clearly(
    ticker_server: TickerProcess,
    settings: Settings,
    who: str,
    path: str,
    params: dict[str, str],
    status: int,
    error: str,
) -> None:
    chief = make_token(settings, "chief", ["en"], role="chief")
    item = ticker_server.post("en", headline="Refused reader")
    _purge(ticker_server, chief, item["uri"], "a secret reason")
    tokens = {
        "viewer": make_token(settings, "viewer", ["en"], role="viewer"),
        "other-channel": make_token(settings, "ar-chief", ["ar"], role="chief"),
        "editor": ticker_server.token,
        "wrong": "tk_wrong",
    }
    headers = {"Authorization": f"Bearer {tokens[who]}"} if who in tokens else {}
    r = httpx.get(
        f"{ticker_server.url}/channels/{path}/audit", params=params, headers=headers, timeout=10
    )
    assert r.status_code == status, r.text
    assert r.json()["error"] == error
    assert "a secret reason" not in r.text
    if status == 422:
        assert r.json()["details"][0]["field"] == next(iter(params))


def test_ticker_audit_lists_rows_json_and_a_table(
    ticker_server: TickerProcess, settings: Settings, tmp_path: Path
) -> None:
    chief = make_token(settings, "chief", ["en"], role="chief")
    (a, b, c), text = _story(ticker_server, chief)
    env = server_env(ticker_server, tmp_path)
    viewer = make_token(settings, "viewer", ["en"], role="viewer")
    terminal = spawn(server_env(ticker_server, tmp_path, FORCE_COLOR="1"), "audit", "en")
    as_viewer = spawn(server_env(ticker_server, tmp_path, TICKER_TOKEN=viewer), "audit", "en")
    piped, as_json, paged = run_all(
        env,
        ("audit", "en"),
        ("audit", "--channel", "en", "--json"),
        ("audit", "en", "--limit", "1"),
    )
    for done in (piped, as_json, paged):
        assert done.returncode == 0, done.stderr
        assert text not in done.stdout
    rows = [line.split("\t") for line in piped.stdout.splitlines()]
    assert [(r[1], r[2], r[3], r[5]) for r in rows] == [
        ("purge", c["uri"], "chief", "settled"),
        ("kill", c["uri"], "server-editor", "-"),
        ("purge", b["uri"], "chief", "court order 7/2026"),
        ("kill", a["uri"], "server-editor", "-"),
    ]
    assert json.loads(as_json.stdout)["records"][0]["id"] == rows[0][0]
    assert len(paged.stdout.splitlines()) == 1
    assert f"more: ticker audit en --before {rows[0][0]}" in paged.stderr

    # A terminal gets a table; a viewer's token is refused with the API's words, exit 4.
    shown, refused = finish(terminal), finish(as_viewer)
    assert "kills, purges and sign-offs" in shown.stdout and c["uri"] in shown.stdout
    assert "court order 7/2026" in shown.stdout and "ago" in shown.stdout
    assert refused.returncode == 4
    assert "is a viewer; this needs an editor token" in refused.stderr
    assert viewer not in refused.stdout + refused.stderr
