"""The desk and a story's editions, in a real browser against a real ticker: a kill in
every edition says which editions stayed on air."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Watch
from tests.browser.test_desk import assert_clean, desk_token, row, sign_in
from tests.helpers import TickerProcess, make_token
from ticker.settings import Settings

pytestmark = pytest.mark.server_per_module

ARABIC = "القبض على مطلق النار في روتردام"


@pytest.fixture
def page_options() -> dict[str, Any]:
    return {"viewport": {"width": 1280, "height": 900}}


def on_air(server: TickerProcess, channel: str) -> list[str]:
    r = httpx.get(f"{server.url}/channels/{channel}/items", timeout=10)
    assert r.status_code == 200, r.text
    return [item["headline"] for item in r.json()["items"]]


def kill_in_every_edition(page: Page, headline: str) -> None:
    row(page, "onair", headline).get_by_role("button", name="Kill").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Kill it in every edition of this story").check()
    dialog.get_by_role("button", name="Kill").click()


def test_a_kill_in_every_edition_says_which_editions_were_refused_and_why(
    page: Page, watch: Watch, ticker_server: TickerProcess, settings: Settings
) -> None:
    ticker_server.post("en", headline="Shooter named", story="rotterdam")
    ticker_server.post("ar", headline=ARABIC, story="rotterdam")
    sign_in(page, ticker_server, make_token(settings, "ar-editor", ["ar"]))
    kill_in_every_edition(page, ARABIC)
    message = page.locator("#board-message")
    expect(message).to_have_text(
        f"Killed in ar: \u2068{ARABIC}\u2069. "
        "Not killed in en: token 'ar-editor' may not write to channel 'en'."
    )
    expect(message).to_have_class("message board-message warning")
    expect(row(page, "onair", ARABIC)).to_have_count(0)
    assert on_air(ticker_server, "en") == ["Shooter named"]  # still on air, as the desk says
    assert_clean(watch)


def test_a_kill_in_every_edition_names_the_editions_killed(
    page: Page, watch: Watch, ticker_server: TickerProcess, settings: Settings
) -> None:
    ticker_server.post("en", headline="Shooter named", story="rotterdam")
    ticker_server.post("ar", headline=ARABIC, story="rotterdam")
    sign_in(page, ticker_server, desk_token(settings, "desk-editor"))
    kill_in_every_edition(page, "Shooter named")
    message = page.locator("#board-message")
    expect(message).to_have_text("Killed in en, ar: \u2068Shooter named\u2069")
    expect(message).to_have_class("message board-message ok")
    assert on_air(ticker_server, "en") == on_air(ticker_server, "ar") == []
    assert_clean(watch)
