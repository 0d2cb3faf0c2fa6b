"""Roles and the life of a token: a viewer reads the desk's view and writes nothing, an
editor writes, a chief also purges; ``token ls`` shows who used what, and when; an
expiry and a rotation hold on every process at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli_helpers import admin_env, run
from tests.helpers import TickerProcess, bearer, make_token, wait_until
from tests.redis_data import rdb
from ticker.newsroom.auth import digest
from ticker.settings import Settings

pytestmark = pytest.mark.anyio


def used_ms(settings: Settings, name: str) -> int | None:
    client = rdb(settings)
    try:
        raw = client.hget(f"{settings.key_prefix}:{{auth}}:used", name)
    finally:
        client.close()
    return int(raw) if raw is not None else None


async def test_a_viewer_reads_the_desk_view_and_every_write_is_refused_uncounted(
    server: tuple[str, Any], token: str, settings: Settings
) -> None:
    viewer = make_token(settings, "night-viewer", ["en"], role="viewer")
    async with httpx.AsyncClient(base_url=server[0], timeout=10) as http:
        posted = await http.post(
            "/channels/en/items", json={"headline": "Dam breached"}, headers=bearer(token)
        )
        uri = posted.json()["uri"]
        held = await http.post(
            "/channels/en/items",
            json={"headline": "Unconfirmed: minister resigns", "status": "withheld"},
            headers=bearer(token),
        )

        on_air = (await http.get("/channels/en/items", headers=bearer(viewer))).json()["items"]
        assert [i["author"] for i in on_air] == ["editor"]
        one = (await http.get(f"/channels/en/items/{uri}", headers=bearer(viewer))).json()
        assert one["versions"][0]["author"] == "editor"
        r = await http.get(f"/channels/en/items/{held.json()['uri']}", headers=bearer(viewer))
        assert r.status_code == 200 and r.json()["status"] == "withheld"
        rows = await http.get(
            "/channels/en/items", params={"history": "true"}, headers=bearer(viewer)
        )
        assert len(rows.json()["items"]) == 2

        writes = [
            http.post("/channels/en/items", json={"headline": "x"}, headers=bearer(viewer)),
            http.patch(f"/channels/en/items/{uri}", json={"headline": "y"}, headers=bearer(viewer)),
            http.delete(f"/channels/en/items/{uri}", headers=bearer(viewer)),
            http.post(
                f"/channels/en/items/{uri}/purge", json={"reason": "z"}, headers=bearer(viewer)
            ),
        ]
        for write in writes:
            r = await write
            assert r.status_code == 403, r.text
            assert "viewer" in r.json()["message"]
        after = (await http.get(f"/channels/en/items/{uri}", headers=bearer(token))).json()
        assert after["version"] == 1 and after["headline"] == "Dam breached"
    # The refused writes used none of the viewer's write rate.
    client = rdb(settings)
    try:
        assert not client.exists(f"{settings.key_prefix}:{{auth}}:rate:{digest(viewer)}")
    finally:
        client.close()


async def test_an_editor_may_not_purge_and_a_chief_may(
    server: tuple[str, Any], token: str, settings: Settings
) -> None:
    chief = make_token(settings, "chief", ["en"], role="chief")
    async with httpx.AsyncClient(base_url=server[0], timeout=10) as http:
        uri = (
            await http.post("/channels/en/items", json={"headline": "x"}, headers=bearer(token))
        ).json()["uri"]
        path = f"/channels/en/items/{uri}/purge"
        r = await http.post(path, json={"reason": "court"}, headers=bearer(token))
        assert r.status_code == 403 and "needs a chief" in r.json()["message"]
        r = await http.post(path, json={"reason": "court"}, headers=bearer(chief))
        assert r.status_code == 200


async def test_last_used_is_kept_for_writes_and_desk_reads_at_most_once_a_minute(
    server: tuple[str, Any], settings: Settings
) -> None:
    writer = make_token(settings, "writer", ["en"])
    reader = make_token(settings, "reader", ["en"], role="viewer")
    assert used_ms(settings, "writer") is None and used_ms(settings, "reader") is None
    async with httpx.AsyncClient(base_url=server[0], timeout=10) as http:
        r = await http.post("/channels/en/items", json={"headline": "a"}, headers=bearer(writer))
        assert r.status_code == 201, r.text
        first = used_ms(settings, "writer")
        assert first is not None
        r = await http.post("/channels/en/items", json={"headline": "b"}, headers=bearer(writer))
        assert r.status_code == 201, r.text
        assert used_ms(settings, "writer") == first  # the second write wrote no "last used"
        assert (await http.get("/channels/en/items", headers=bearer(reader))).status_code == 200
        read = used_ms(settings, "reader")
        assert read is not None
        assert (await http.get("/channels/en/items", headers=bearer(reader))).status_code == 200
        assert used_ms(settings, "reader") == read  # nor the second desk read
        assert (await http.get("/channels/en/items")).status_code == 200  # anonymous: nobody's
    assert (used_ms(settings, "writer"), used_ms(settings, "reader")) == (first, read)
    client = rdb(settings)
    try:  # no "last used" but these two tokens'
        assert set(client.hkeys(f"{settings.key_prefix}:{{auth}}:used")) == {b"writer", b"reader"}
    finally:
        client.close()


def test_token_ls_shows_role_channels_created_and_last_used(
    settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "cli-state").mkdir()
    admin = admin_env(settings, tmp_path)
    made = run(admin, "token", "create", "desk-viewer", "-c", "en", "--role", "viewer")
    assert made.returncode == 0, made.stderr
    run(admin, "token", "create", "desk-chief", "-c", "*", "--role", "chief")
    client = rdb(settings)
    client.hset(f"{settings.key_prefix}:{{auth}}:used", "desk-chief", "1764547200000")
    client.close()
    listed = run(admin, "token", "ls")
    assert listed.returncode == 0, listed.stderr
    rows = {line.split("\t")[0]: line.split("\t") for line in listed.stdout.splitlines()}
    assert rows["desk-viewer"][1:3] == ["viewer", "en"]
    assert rows["desk-viewer"][4] == "-"  # never used
    assert rows["desk-chief"][1:3] == ["chief", "*"]
    assert rows["desk-chief"][4] == "2025-12-01T00:00:00Z"
    assert made.stdout.strip() not in listed.stdout


def test_an_unknown_role_is_refused_and_no_token_is_made(
    settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "cli-state").mkdir()
    admin = admin_env(settings, tmp_path)
    done = run(admin, "token", "create", "desk", "-c", "en", "--role", "admin")
    assert done.returncode == 1
    assert "role must be one of viewer, contributor, editor, chief" in done.stderr
    assert done.stdout == ""
    assert "desk" not in run(admin, "token", "ls").stdout


# -- a token's life: expiry and rotation, on every process at once -------------------


def desk_read(server: TickerProcess, secret: str) -> int:
    r = httpx.get(f"{server.url}/channels/en/items", headers=bearer(secret), timeout=10)
    return r.status_code


def test_an_expired_token_is_refused_by_every_process_at_once(
    ticker_server: TickerProcess, settings: Settings, tmp_path: Path
) -> None:
    second = TickerProcess(ticker_server.env, log=tmp_path / "second.log")
    second.start()
    try:
        short = make_token(settings, "temp-desk", ["en"], expires=timedelta(seconds=2))
        assert desk_read(ticker_server, short) == desk_read(second, short) == 200
        wait_until(lambda: desk_read(ticker_server, short) == 401)
        assert desk_read(second, short) == 401
        r = httpx.post(
            f"{second.url}/channels/en/items",
            json={"headline": "too late"},
            headers=bearer(short),
            timeout=10,
        )
        assert r.status_code == 401
    finally:
        second.stop()


def test_a_rotation_holds_on_every_process_at_once(
    ticker_server: TickerProcess, settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "cli-state").mkdir()
    admin = admin_env(settings, tmp_path)
    second = TickerProcess(ticker_server.env, log=tmp_path / "second.log")
    second.start()
    try:
        first = make_token(settings, "desk", ["en"])
        assert desk_read(ticker_server, first) == desk_read(second, first) == 200

        now = run(admin, "token", "rotate", "desk", "--grace", "0s")
        assert now.returncode == 0, now.stderr
        fresh = now.stdout.strip()
        assert fresh.startswith("tk_") and fresh != first and fresh not in now.stderr
        for process in (ticker_server, second):
            assert desk_read(process, first) == 401
            assert desk_read(process, fresh) == 200

        later = run(admin, "token", "rotate", "desk", "--grace", "1h")
        assert later.returncode == 0, later.stderr
        newest = later.stdout.strip()
        for process in (ticker_server, second):
            assert desk_read(process, newest) == 200
            assert desk_read(process, fresh) == 200  # its grace hour has begun
            assert desk_read(process, first) == 401
        r = httpx.post(
            f"{second.url}/channels/en/items",
            json={"headline": "during the grace"},
            headers=bearer(fresh),
            timeout=10,
        )
        assert r.status_code == 201 and r.json()["author"] == "desk"

        # A rotation inside the grace ends the older secret's grace at once.
        run(admin, "token", "rotate", "desk")
        assert desk_read(ticker_server, fresh) == desk_read(second, fresh) == 401
        # Revoking ends every secret of the token.
        assert run(admin, "token", "revoke", "desk").returncode == 0
        assert desk_read(ticker_server, newest) == desk_read(second, newest) == 401
    finally:
        second.stop()


def test_bad_expiries_and_graces_are_refused_and_nothing_is_written(
    settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "cli-state").mkdir()
    admin = admin_env(settings, tmp_path)
    cases = [
        ("expires", ("token", "create", "a", "-c", "en", "--expires", "0s")),
        ("expires", ("token", "create", "b", "-c", "en", "--expires", "-1d")),
        ("expires", ("token", "create", "c", "-c", "en", "--expires", "3651d")),
        ("expires", ("token", "create", "d", "-c", "en", "--expires", "soon")),
        ("grace", ("token", "rotate", "e", "--grace", "31d")),
        ("no token named 'nobody'", ("token", "rotate", "nobody")),
    ]
    make_token(settings, "e", ["en"])
    for expected, args in cases:
        done = run(admin, *args)
        assert done.returncode == 1, (args, done.stderr)
        assert expected in done.stderr and done.stdout == "", (args, done.stderr)
    names = [line.split("\t")[0] for line in run(admin, "token", "ls").stdout.splitlines()]
    assert names == ["e"]


def test_token_ls_shows_the_expiry(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "cli-state").mkdir()
    admin = admin_env(settings, tmp_path)
    assert run(admin, "token", "create", "temp", "-c", "en", "--expires", "30d").returncode == 0
    (row,) = run(admin, "token", "ls").stdout.splitlines()
    expires = datetime.fromisoformat(row.split("\t")[5])
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)
