"""The desk keeps an editor in the right edition, in a real browser against a real ticker:
the form names the edition, a switch with a draft asks first, a headline in another
script is warned about, and a kill in every edition says which editions stayed on air."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Watch
from tests.browser.desk import DESK_PAGE, assert_clean, row, sign_in, sign_in_as
from tests.helpers import TickerProcess, make_token
from ticker.settings import Settings

pytestmark = pytest.mark.server_per_module

SPANISH = "Detenido el autor del tiroteo de Róterdam"
ARABIC = "القبض على مطلق النار في روتردام"


@pytest.fixture
def page_options() -> dict[str, Any]:
    return DESK_PAGE


def on_air(server: TickerProcess, channel: str) -> list[str]:
    r = httpx.get(f"{server.url}/channels/{channel}/items", timeout=10)
    assert r.status_code == 200, r.text
    return [item["headline"] for item in r.json()["items"]]


def kill_in_every_edition(page: Page, headline: str, story: str = "rotterdam") -> None:
    # As an editor does: the row shows the item's story before the kill is for every edition.
    expect(row(page, "onair", headline)).to_contain_text(f"story {story}")
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
    sign_in_as(page, ticker_server, settings, "desk-editor")
    kill_in_every_edition(page, "Shooter named")
    message = page.locator("#board-message")
    expect(message).to_have_text("Killed in en, ar: \u2068Shooter named\u2069")
    expect(message).to_have_class("message board-message ok")
    assert on_air(ticker_server, "en") == on_air(ticker_server, "ar") == []
    assert_clean(watch)


def test_the_post_button_and_heading_name_the_edition(
    page: Page, watch: Watch, ticker_server: TickerProcess, settings: Settings
) -> None:
    sign_in_as(page, ticker_server, settings, "desk-editor")
    post = page.locator("#post")
    expect(post).to_have_text("Post to en")
    expect(page.locator("#compose-title")).to_have_text("Post to en (English)")
    page.get_by_label("Channel").select_option("ar")
    expect(post).to_have_text("Post to ar")
    expect(page.locator("#compose-title")).to_have_text("Post to ar (Arabic)")
    expect(page.get_by_role("region", name="Post to ar (Arabic)")).to_be_visible()
    assert_clean(watch)


def test_an_arrow_key_on_the_channel_with_a_draft_asks_first(
    page: Page, watch: Watch, ticker_server: TickerProcess, settings: Settings
) -> None:
    sign_in_as(page, ticker_server, settings, "desk-editor")
    headline = page.locator("#f-headline")
    headline.fill(SPANISH)
    channel = page.get_by_label("Channel")
    channel.focus()

    channel.press("ArrowDown")  # the next edition, ar: asked in the page, "Stay" keeps both
    dialog = page.get_by_role("dialog", name="Switch to the ar edition (Arabic)?")
    expect(dialog).to_be_visible()
    expect(channel).to_have_value("en")
    dialog.get_by_role("button", name="Stay").click()
    expect(dialog).to_be_hidden()
    expect(channel).to_have_value("en")
    expect(page.locator("#post")).to_have_text("Post to en")
    expect(page.locator("#preview")).to_have_attribute("channel", "en")
    expect(headline).to_have_value(SPANISH)

    channel.focus()
    channel.press("ArrowDown")  # "Switch": the edition changes, the draft stays
    dialog.get_by_role("button", name="Switch").click()
    expect(page.locator("#post")).to_have_text("Post to ar")
    expect(channel).to_have_value("ar")
    expect(page.locator("#preview")).to_have_attribute("channel", "ar")
    expect(headline).to_have_value(SPANISH)

    headline.fill("")
    channel.focus()
    channel.press("ArrowDown")  # no draft: nothing to ask
    expect(page.locator("#post")).to_have_text("Post to es")
    expect(page.get_by_role("dialog")).to_have_count(0)
    assert_clean(watch)


def test_a_headline_in_another_script_is_warned_about_before_it_is_posted(
    page: Page, watch: Watch, ticker_server: TickerProcess, settings: Settings
) -> None:
    sign_in_as(page, ticker_server, settings, "desk-editor")
    page.get_by_label("Channel").select_option("ar")
    form = page.locator("#post-form")
    warning = page.locator("#post-warning")
    expect(warning).to_be_hidden()

    form.get_by_label("Headline", exact=True).fill(SPANISH)
    form.get_by_role("button", name="Post to ar").click()
    expect(warning).to_be_visible()
    expect(warning).to_have_text(
        "This headline is in Latin script, but ar is the Arabic edition (Arabic script). "
        "Check the channel, or post anyway."
    )
    expect(warning).to_have_attribute("role", "alert")
    expect(page.get_by_role("button", name="Post to ar anyway")).to_have_accessible_description(
        warning.inner_text()
    )
    page.wait_for_timeout(200)
    assert on_air(ticker_server, "ar") == []  # the first click posted nothing

    form.get_by_role("button", name="Post to ar anyway").click()
    expect(page.locator("#post-message")).to_contain_text("Posted")
    assert on_air(ticker_server, "ar") == [SPANISH]
    expect(warning).to_be_hidden()
    expect(page.locator("#post")).to_have_text("Post to ar")

    # Arabic on the English edition: warned; a new headline is checked again.
    page.get_by_label("Channel").select_option("en")
    form.get_by_label("Headline", exact=True).fill(ARABIC)
    form.get_by_label("Headline", exact=True).press("Enter")
    expect(warning).to_contain_text("This headline is in Arabic script, but en is the English")
    form.get_by_label("Headline", exact=True).fill("Rotterdam shooter arrested")
    expect(warning).to_be_hidden()
    expect(page.locator("#post")).to_have_text("Post to en")
    form.get_by_role("button", name="Post to en").click()
    expect(page.locator("#post-message")).to_contain_text("Posted")
    assert on_air(ticker_server, "en") == ["Rotterdam shooter arrested"]
    assert_clean(watch)


def test_the_script_check_warns_only_where_it_knows(
    page: Page, ticker_server: TickerProcess
) -> None:
    page.goto(f"{ticker_server.url}/desk")
    verdicts = page.evaluate(
        """async () => {
            const { scriptMismatch } = await import("/static/writing.js");
            return [
                ["Detenido el autor del tiroteo", "ar"],
                ["القبض على مطلق النار", "en"],
                ["القبض على مطلق النار", "es"],
                ["القبض على مطلق النار في NATO", "ar"],  // a Latin acronym inside
                ["Talks with حماس resume in Cairo", "en"],  // an Arabic name inside
                ["2-1", "ar"],  // no letters
                ["Anything at all", "xx"],  // a language we do not know
                ["Anything at all", ""],
                ["Vučić meets Putin", "sr"],  // Serbian: Latin or Cyrillic
                ["Путин встречает Вучича", "sr-Latn"],  // the script subtag wins
                ["地震が発生しました", "ja"],
            ].map(([text, language]) => scriptMismatch(text, language));
        }"""
    )
    assert verdicts == [
        {"found": "Latin", "expected": ["Arabic"]},
        {"found": "Arabic", "expected": ["Latin"]},
        {"found": "Arabic", "expected": ["Latin"]},
        None,
        None,
        None,
        None,
        None,
        None,
        {"found": "Cyrillic", "expected": ["Latin"]},
        None,
    ]
