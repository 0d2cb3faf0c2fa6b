"""The desk's queue: what is held or waiting for its embargo, newest first, for any
token of the channel and nobody else."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
import pytest

from tests.cli_helpers import cli_env, run
from tests.helpers import bearer, make_token
from ticker.domain.models import utcnow
from ticker.settings import Settings

pytestmark = pytest.mark.anyio


async def _fill(http: httpx.AsyncClient, token: str) -> dict[str, dict[str, Any]]:
    """One item in each state; the queue should list the held and the embargoed ones."""

    async def post(**body: Any) -> dict[str, Any]:
        r = await http.post("/channels/en/items", json=body, headers=bearer(token))
        assert r.status_code == 201, r.text
        return dict(r.json())

    later = (utcnow() + timedelta(hours=1)).isoformat()
    made = {
        "held": await post(headline="Held: PM to resign", status="withheld"),
        "on_air": await post(headline="On air"),
        "killed": await post(headline="Held, then killed", status="withheld"),
        "released": await post(headline="Held, then released", status="withheld"),
        "embargoed": await post(headline="Embargoed: budget", embargoed_until=later),
    }
    await http.delete(f"/channels/en/items/{made['killed']['uri']}", headers=bearer(token))
    r = await http.patch(
        f"/channels/en/items/{made['released']['uri']}",
        json={"status": "usable"},
        headers=bearer(token),
    )
    assert r.status_code == 200
    r = await http.patch(
        f"/channels/en/items/{made['held']['uri']}",
        json={"headline": "Held: PM to resign, sources say"},
        headers=bearer(token),
    )
    made["held"] = r.json()
    return made


async def test_the_queue_lists_held_and_embargoed_items_newest_first_for_any_role(
    server: tuple[str, Any], token: str, settings: Settings
) -> None:
    viewer = make_token(settings, "viewer", ["en"], role="viewer")
    async with httpx.AsyncClient(base_url=server[0], timeout=10) as http:
        made = await _fill(http, token)
        r = await http.get("/channels/en/queue", headers=bearer(viewer))
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "private, no-store"
        rows = r.json()["items"]
        assert [row["uri"] for row in rows] == [made["embargoed"]["uri"], made["held"]["uri"]]
        embargoed, held = rows
        assert embargoed["status"] == "usable"
        assert embargoed["embargoed_until"] == made["embargoed"]["embargoed_until"]
        assert held["status"] == "withheld" and held["embargoed_until"] is None
        assert held["author"] == "editor" and held["version"] == 2
        assert held["updated_at"] == made["held"]["updated_at"]  # the last change


async def test_the_queue_is_refused_without_a_token_or_with_another_channels(
    server: tuple[str, Any], token: str, settings: Settings
) -> None:
    other = make_token(settings, "es-desk", ["es"], role="viewer")
    async with httpx.AsyncClient(base_url=server[0], timeout=10) as http:
        made = await _fill(http, token)
        anonymous = await http.get("/channels/en/queue")
        assert anonymous.status_code == 401
        assert made["held"]["headline"] not in anonymous.text
        assert "access-control-allow-origin" not in anonymous.headers
        assert (await http.get("/channels/en/queue", headers=bearer(other))).status_code == 403
        assert (await http.get("/channels/xx/queue", headers=bearer(token))).status_code == 404


async def test_ticker_queue_prints_what_waits(
    server: tuple[str, Any], token: str, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(base_url=server[0], timeout=10) as http:
        made = await _fill(http, token)
    (tmp_path / "cli-state").mkdir()
    env = cli_env(tmp_path, TICKER_URL=server[0], TICKER_TOKEN=token)
    done = await _in_thread(run, env, "queue", "--channel", "en")
    assert done.returncode == 0, done.stderr
    lines = [line.split("\t") for line in done.stdout.splitlines()]
    assert [line[0] for line in lines] == [made["embargoed"]["uri"], made["held"]["uri"]]
    assert lines[1][1:4] == ["withheld", "-", "editor"]
    assert lines[1][5] == "Held: PM to resign, sources say"
    assert token not in done.stdout + done.stderr


async def _in_thread(fn: Any, *args: Any) -> Any:
    return await anyio.to_thread.run_sync(fn, *args)
