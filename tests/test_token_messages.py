"""What a token that no longer works is told, by the API and the CLI: "expired at" for a
token past its expiry, "rotated at" for a secret past its rotation's grace, and "unknown or
revoked" as before for the rest; and what ``token ls`` shows of each token's life.

Expiries and graces are set in the past by rewriting the token's record in Redis (its
``expires_ms`` / ``previous_until_ms``, the fields the lookup script reads), so nothing
waits for a clock.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli_helpers import admin_env, finish, history, run, server_env, spawn
from tests.helpers import TickerProcess, bearer, make_token
from tests.redis_data import rdb
from ticker.settings import Settings

pytestmark = pytest.mark.server_per_module

EXPIRED = datetime(2025, 12, 6, 18, 0, tzinfo=UTC)
EXPIRED_MS = int(EXPIRED.timestamp() * 1000)
ROTATED = datetime(2025, 12, 6, 18, 30, tzinfo=UTC)
GRACE_ENDED = datetime(2025, 12, 6, 19, 30, tzinfo=UTC)


def rewrite(settings: Settings, name: str, **fields: Any) -> dict[str, Any]:
    """Change fields of a token's stored record (as if its time had come); the record."""
    client = rdb(settings)
    key = f"{settings.key_prefix}:{{auth}}:tokens"
    try:
        record: dict[str, Any] = json.loads(client.hget(key, name)) | fields
        client.hset(key, name, json.dumps(record))
    finally:
        client.close()
    return record


def expire(settings: Settings, name: str) -> None:
    rewrite(settings, name, expires_ms=EXPIRED_MS, expires_at=EXPIRED.isoformat())


def attempts(server: TickerProcess, headers: dict[str, str]) -> dict[str, httpx.Response]:
    """One request of each kind a token makes: a write, a desk read, the queue, whoami."""
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as http:
        return {
            # "force": a test may write more than once (the same headline is a duplicate).
            "post": http.post("/channels/en/items", json={"headline": "Too late", "force": True}),
            "read": http.get("/channels/en/items"),
            "queue": http.get("/channels/en/queue"),
            "whoami": http.get("/whoami"),
        }


def test_an_expired_token_is_told_when_it_expired_on_every_path(
    ticker_server: TickerProcess, settings: Settings, tmp_path: Path
) -> None:
    secret = make_token(settings, "temp-desk", ["en"])
    expire(settings, "temp-desk")
    told = {
        "error": "token_expired",
        "message": "token 'temp-desk' expired at 2025-12-06T18:00:00Z",
        "token": "temp-desk",
        "expired_at": "2025-12-06T18:00:00Z",
    }
    # The scheme is case-insensitive: a lower-case "bearer" reaches the lookup too.
    for headers in (bearer(secret), {"Authorization": f"bearer {secret}"}):
        for path, reply in attempts(ticker_server, headers).items():
            assert (path, reply.status_code, reply.json()) == (path, 401, told)
            assert reply.headers["www-authenticate"] == 'Bearer realm="ticker"'
            assert secret not in reply.text
    assert history(ticker_server) == []  # the refused post wrote nothing

    # A malformed header is still told what is wrong with the header.
    for malformed in (f"Basic {secret}", secret, "Bearer", f"Token {secret}"):
        reply = httpx.get(f"{ticker_server.url}/whoami", headers={"Authorization": malformed})
        assert reply.status_code == 401
        assert reply.json()["message"] == "use Authorization: Bearer <token>", malformed

    # Revoked as well as expired: revoking forgets it, so it is unknown like any wrong token.
    (tmp_path / "cli-state").mkdir()
    assert run(admin_env(settings, tmp_path), "token", "revoke", "temp-desk").returncode == 0
    for reply in attempts(ticker_server, bearer(secret)).values():
        assert reply.status_code == 401
        assert reply.json() == {"error": "unauthorized", "message": "unknown or revoked token"}


def test_a_rotated_out_secret_works_through_its_grace_then_is_told_it_was_rotated(
    ticker_server: TickerProcess, settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "cli-state").mkdir()
    admin = admin_env(settings, tmp_path)
    first = make_token(settings, "desk", ["en"])
    rotated = run(admin, "token", "rotate", "desk", "--grace", "1h")
    assert rotated.returncode == 0, rotated.stderr
    second = rotated.stdout.strip()
    # In its grace the old secret keeps working, for writes and reads alike.
    during = attempts(ticker_server, bearer(first))
    assert [r.status_code for r in during.values()] == [201, 200, 200, 200]

    # As if it had been rotated at 18:30 with an hour's grace.
    rewrite(
        settings,
        "desk",
        rotated_at=ROTATED.isoformat(),
        previous_until_ms=int(GRACE_ENDED.timestamp() * 1000),
    )
    at = "2025-12-06T18:30:00Z"
    for reply in attempts(ticker_server, bearer(first)).values():
        assert reply.status_code == 401
        assert reply.json() == {
            "error": "token_rotated",
            "message": f"token 'desk' was rotated at {at}; this secret stopped working at "
            "2025-12-06T19:30:00Z",
            "token": "desk",
            "expired_at": "2025-12-06T19:30:00Z",
            "rotated_at": at,
        }
    after = attempts(ticker_server, bearer(second))  # the new secret works
    assert [r.status_code for r in after.values()] == [201, 200, 200, 200]

    # With no grace the replaced secret stops at once, and is told so; the one before it
    # is forgotten: unknown.
    again = run(admin, "token", "rotate", "desk", "--grace", "0s")
    assert again.returncode == 0, again.stderr
    new = again.stdout.strip()
    reply = httpx.get(f"{ticker_server.url}/whoami", headers=bearer(second))
    assert reply.status_code == 401 and reply.json()["error"] == "token_rotated"
    assert reply.json()["expired_at"] == reply.json()["rotated_at"]
    reply = httpx.get(f"{ticker_server.url}/whoami", headers=bearer(first))
    assert reply.json() == {"error": "unauthorized", "message": "unknown or revoked token"}

    # Once the token has expired, that is what every secret it had is told.
    expire(settings, "desk")
    for secret in (second, new):
        reply = httpx.get(f"{ticker_server.url}/whoami", headers=bearer(secret))
        assert reply.json()["message"] == "token 'desk' expired at 2025-12-06T18:00:00Z"


def test_the_cli_says_its_token_lapsed_and_what_to_do(
    ticker_server: TickerProcess, settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "cli-state").mkdir()
    expired = make_token(settings, "temp-desk", ["en"])
    expire(settings, "temp-desk")
    old = make_token(settings, "desk", ["en"])
    rotation = run(admin_env(settings, tmp_path), "token", "rotate", "desk", "--grace", "0s")
    assert rotation.returncode == 0, rotation.stderr
    at = datetime.fromisoformat(rewrite(settings, "desk")["rotated_at"])
    at_z = at.strftime("%Y-%m-%dT%H:%M:%SZ")

    as_expired = server_env(ticker_server, tmp_path, TICKER_TOKEN=expired)
    as_rotated = server_env(ticker_server, tmp_path, TICKER_TOKEN=old)
    post, ls, rotated = [
        finish(p)
        for p in (
            spawn(as_expired, "post", "Too late"),
            spawn(as_expired, "ls"),
            spawn(as_rotated, "post", "Too late"),
        )
    ]
    told = (
        "error: the token in TICKER_TOKEN ('temp-desk') expired at 2025-12-06T18:00:00Z; "
        "ask a chief for a new one: ticker token create NAME --channel CH\n"
    )
    for done in (post, ls):
        assert (done.returncode, done.stderr, done.stdout) == (4, told, "")
    assert (rotated.returncode, rotated.stdout) == (4, "")
    assert rotated.stderr == (
        f"error: the token in TICKER_TOKEN ('desk') was rotated at {at_z}; this secret "
        f"stopped working at {at_z}. Set TICKER_TOKEN to the new secret (`ticker token "
        "rotate` printed it once), or ask a chief for it\n"
    )
    for done in (post, ls, rotated):
        assert expired not in done.stderr and old not in done.stderr
    assert history(ticker_server) == []


def test_token_ls_marks_expired_tokens_and_a_rotations_grace(
    settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "cli-state").mkdir()
    admin = admin_env(settings, tmp_path)
    make_token(settings, "active", ["en"])
    make_token(settings, "gone", ["en"])
    expire(settings, "gone")
    make_token(settings, "rotating", ["en"])
    assert run(admin, "token", "rotate", "rotating", "--grace", "2h").returncode == 0
    make_token(settings, "rotated", ["en"])
    assert run(admin, "token", "rotate", "rotated", "--grace", "0s").returncode == 0

    procs = [spawn(admin, "token", "ls"), spawn({**admin, "FORCE_COLOR": "1"}, "token", "ls")]
    piped, terminal = [finish(p) for p in procs]
    rows = {line.split("\t")[0]: line.split("\t") for line in piped.stdout.splitlines()}
    assert {name: row[6:] for name, row in rows.items() if name != "rotating"} == {
        "active": ["active", "-"],
        "gone": ["expired", "-"],
        "rotated": ["active", "-"],  # no grace: no old secret that still works
    }
    assert rows["gone"][5] == EXPIRED.isoformat().replace("+00:00", "Z")
    status, until = rows["rotating"][6:]
    assert status == "active"
    left = datetime.fromisoformat(until) - datetime.now(UTC)
    assert 7000 < left.total_seconds() <= 7200

    assert terminal.returncode == 0, terminal.stderr
    assert "old secret until" in terminal.stdout and "status" in terminal.stdout
    line = next(line for line in terminal.stdout.splitlines() if "gone" in line)
    assert "expired" in line and "2025-12-06 18:00 UTC" in line
    line = next(line for line in terminal.stdout.splitlines() if "rotating" in line)
    assert until[:16].replace("T", " ") + " UTC" in line
