"""Linked editions: a story slug links items across channels; the desk sees the links,
and one kill takes every edition the token may write, saying which it could not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
import pytest

from tests.cli_helpers import cli_env, run
from tests.helpers import bearer, make_token
from tests.redis_data import stream_len
from ticker.settings import Settings

pytestmark = pytest.mark.anyio

STORY = "quake-2026"


def stream_lengths(settings: Settings) -> list[int]:
    return [stream_len(settings, ch) for ch in ("en", "ar", "es")]


async def _editions(http: httpx.AsyncClient, token: str) -> dict[str, dict[str, Any]]:
    made = {}
    for channel, headline in (("en", "Quake hits"), ("ar", "زلزال"), ("es", "Terremoto")):
        r = await http.post(
            f"/channels/{channel}/items",
            json={"headline": headline, "story": STORY},
            headers=bearer(token),
        )
        assert r.status_code == 201, r.text
        assert r.json()["story"] == STORY
        made[channel] = r.json()
    unrelated = await http.post(
        "/channels/en/items", json={"headline": "Other news"}, headers=bearer(token)
    )
    assert unrelated.status_code == 201
    return made


async def test_the_desk_view_of_an_item_lists_its_editions_on_channels_it_may_read(
    server: tuple[str, Any], token: str, settings: Settings
) -> None:
    two = make_token(settings, "en-ar-viewer", ["en", "ar"], role="viewer")
    async with httpx.AsyncClient(base_url=server[0], timeout=10) as http:
        made = await _editions(http, token)
        path = f"/channels/en/items/{made['en']['uri']}"
        body = (await http.get(path, headers=bearer(token))).json()
        assert {(e["channel"], e["uri"]) for e in body["editions"]} == {
            ("ar", made["ar"]["uri"]),
            ("es", made["es"]["uri"]),
        }
        assert body["editions"][0]["author"] == "editor"
        limited = (await http.get(path, headers=bearer(two))).json()
        assert [e["channel"] for e in limited["editions"]] == ["ar"]
        anonymous = await http.get(path)
        assert anonymous.status_code == 200
        assert "story" not in anonymous.json() and "editions" not in anonymous.json()
        assert STORY not in (await http.get("/channels/en/items")).text


async def test_killing_all_editions_kills_what_the_token_may_write_and_reports_the_rest(
    server: tuple[str, Any], token: str, settings: Settings
) -> None:
    en_ar = make_token(settings, "en-ar-desk", ["en", "ar"])
    async with httpx.AsyncClient(base_url=server[0], timeout=10) as http:
        made = await _editions(http, token)
        r = await http.delete(
            f"/channels/en/items/{made['en']['uri']}",
            params={"all_editions": "true"},
            headers=bearer(en_ar),
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["story"] == STORY
        assert {(i["channel"], i["uri"], i["status"]) for i in body["killed"]} == {
            ("en", made["en"]["uri"], "canceled"),
            ("ar", made["ar"]["uri"], "canceled"),
        }
        (refused,) = body["refused"]
        assert (refused["channel"], refused["uri"], refused["status"]) == (
            "es",
            made["es"]["uri"],
            403,
        )
        assert made["es"]["headline"] not in r.text
        # The es edition is untouched; the unrelated item too.
        es = (await http.get("/channels/es/items")).json()["items"]
        assert [i["uri"] for i in es] == [made["es"]["uri"]]
        assert [i["headline"] for i in (await http.get("/channels/en/items")).json()["items"]] == [
            "Other news"
        ]


async def test_bad_story_and_all_editions_values_are_refused_and_write_nothing(
    server: tuple[str, Any], token: str, settings: Settings
) -> None:
    async with httpx.AsyncClient(base_url=server[0], timeout=10) as http:
        made = await _editions(http, token)
        before = stream_lengths(settings)
        for story in ("Quake 2026", "x" * 33, "quake\n", 7):
            r = await http.post(
                "/channels/en/items", json={"headline": "x", "story": story}, headers=bearer(token)
            )
            assert r.status_code == 422 and r.json()["details"][0]["field"] == "story", r.text
        r = await http.delete(
            f"/channels/en/items/{made['en']['uri']}",
            params={"all_editions": "maybe"},
            headers=bearer(token),
        )
        assert r.status_code == 422 and r.json()["details"][0]["field"] == "all_editions"
        assert stream_lengths(settings) == before


async def test_ticker_kill_all_editions_says_what_it_could_not_kill(
    server: tuple[str, Any], token: str, settings: Settings, tmp_path: Path
) -> None:
    en_ar = make_token(settings, "en-ar-desk", ["en", "ar"])
    (tmp_path / "cli-state").mkdir()
    env = cli_env(tmp_path, TICKER_URL=server[0], TICKER_TOKEN=token)
    posted = await anyio.to_thread.run_sync(
        run, env, "post", "Quake hits", "--story", STORY, "--channel", "ar"
    )
    assert posted.returncode == 0, posted.stderr
    async with httpx.AsyncClient(base_url=server[0], timeout=10) as http:
        made = await _editions(http, token)
    env = cli_env(tmp_path, TICKER_URL=server[0], TICKER_TOKEN=en_ar)
    done = await anyio.to_thread.run_sync(run, env, "kill", made["en"]["uri"], "--all-editions")
    assert done.returncode == 4  # a 403 among the refusals: auth
    killed = [line.split()[1] for line in done.stdout.splitlines()]
    assert len(killed) == 3 and made["en"]["uri"] == killed[0]
    assert f"not killed: {made['es']['uri']} on es (403 forbidden)" in done.stderr
