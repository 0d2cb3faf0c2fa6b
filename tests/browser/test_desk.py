"""The web desk at /desk in a real browser, against a real ticker process.

An editor signs in with a token and acts through the page; a separate SSE reader (as a
reader's widget would) checks what actually went out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.browser.conftest import Watch, wait_live
from tests.browser.desk import (
    DESK_PAGE,
    assert_clean,
    desk_token,
    post_from_desk,
    row,
    sign_in,
    sign_in_as,
)
from tests.helpers import TickerProcess, wait_until
from ticker.domain.errors import InvalidRequest
from ticker.newsroom.auth import Tokens
from ticker.settings import Settings
from ticker.store import Store

pytestmark = pytest.mark.server_per_module

ARTIFACTS = Path(__file__).parents[1] / "artifacts"
WRITE_BUTTONS = ("Post", "Correct", "Hold", "Release", "Kill", "Pin", "Unpin", "Purge")


@pytest.fixture
def page_options() -> dict[str, Any]:
    return DESK_PAGE


class StreamReader:
    """A reader of a channel's SSE stream on a thread of its own: every event, decoded."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.stop = threading.Event()
        self.connected = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        kind, data = "message", ""
        with httpx.stream("GET", self.url, timeout=httpx.Timeout(10, read=5)) as response:
            self.connected.set()
            # Heartbeats (every second in tests) wake this loop up to look at `stop`.
            for line in response.iter_lines():
                if self.stop.is_set():
                    return
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:"):
                    data += line[5:].strip()
                elif not line:
                    if data:
                        self.events.append((kind, json.loads(data)))
                    kind, data = "message", ""

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [data for k, data in list(self.events) if k == kind]

    def got(self, kind: str, **fields: Any) -> bool:
        return any(all(e.get(k) == v for k, v in fields.items()) for e in self.of(kind))


@pytest.fixture
def reader(ticker_server: TickerProcess) -> Iterator[StreamReader]:
    stream = StreamReader(f"{ticker_server.url}/channels/en/events")
    stream.thread.start()
    assert stream.connected.wait(10)
    try:
        yield stream
    finally:
        stream.stop.set()
        stream.thread.join(5)


def test_editor_posts_corrects_holds_releases_and_kills_from_the_desk(
    page: Page,
    watch: Watch,
    ticker_server: TickerProcess,
    settings: Settings,
    reader: StreamReader,
) -> None:
    sign_in_as(page, ticker_server, settings, "desk-editor")
    expect(page.locator("#who-name")).to_have_text("desk-editor")
    expect(page.locator("#who-role")).to_have_text("editor")
    expect(page.locator("#who-channels")).to_have_text("*")

    headline = "Storm closes the harbour"
    post_from_desk(page, headline, Source="Coastguard", Regions="europe")
    wait_until(lambda: reader.got("item", headline=headline, source="Coastguard"))
    on_air = row(page, "onair", headline)
    expect(on_air).to_contain_text("by desk-editor")
    expect(on_air).to_contain_text("expires in")

    on_air.get_by_role("button", name="Correct").click()
    corrected = "Storm closes the harbour and the airport"
    on_air.get_by_label("Headline", exact=True).fill(corrected)
    on_air.get_by_label("Mark as corrected").check()  # readers see "Updated"
    on_air.get_by_role("button", name="Save correction").click()
    wait_until(lambda: reader.got("item", headline=corrected, version=2))
    assert reader.of("item")[-1]["corrected_at"] == reader.of("item")[-1]["updated_at"]
    expect(page.locator("#onair > li")).to_have_count(1)
    expect(page.locator("#history > li").first).to_contain_text(
        f"corrected (marked Updated): headline: “{headline}” → “{corrected}”"
    )
    expect(row(page, "onair", corrected)).to_contain_text("corrected ")
    uri = reader.of("item")[-1]["uri"]

    row(page, "onair", corrected).get_by_role("button", name="Hold").click()
    wait_until(lambda: reader.got("remove", uri=uri, reason="withhold"))
    expect(page.locator("#onair > li")).to_have_count(0)
    waiting = row(page, "waiting", corrected)
    expect(waiting).to_contain_text("held")

    waiting.get_by_role("button", name="Release").click()
    wait_until(lambda: reader.got("item", uri=uri, version=4))
    expect(page.locator("#waiting > li")).to_have_count(0)

    # The confirmation names the headline; Cancel changes nothing.
    row(page, "onair", corrected).get_by_role("button", name="Kill").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"“{corrected}”")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(row(page, "onair", corrected)).to_have_count(1)

    row(page, "onair", corrected).get_by_role("button", name="Kill").click()
    page.get_by_label("Note for readers").fill("Withdrawn: the airport stays open")
    page.get_by_role("dialog").get_by_role("button", name="Kill").click()
    # This edition keeps kill notices for the desk: readers get the removal alone.
    wait_until(lambda: reader.got("remove", uri=uri, reason="kill"))
    assert reader.of("remove")[-1] == {"uri": uri, "reason": "kill"}
    expect(page.locator("#onair > li")).to_have_count(0)
    newest = page.locator("#history > li").first
    expect(newest).to_contain_text("killed, note: “Withdrawn: the airport stays open”")
    expect(newest).to_contain_text("desk-editor")
    assert not reader.got("remove", uri=uri, reason="expire")
    assert_clean(watch)


def test_a_contributors_post_waits_for_an_editor_who_approves_or_rejects_it(
    page: Page,
    watch: Watch,
    ticker_server: TickerProcess,
    settings: Settings,
    reader: StreamReader,
) -> None:
    stringer = desk_token(settings, "desk-stringer", role="contributor")
    other = httpx.post(
        f"{ticker_server.url}/channels/en/items",
        json={"headline": "Minister to quit, one source says"},
        headers={"Authorization": f"Bearer {stringer}"},
        timeout=10,
    ).json()
    sign_in(page, ticker_server, stringer)
    expect(page.locator("#contributor-note")).to_be_visible()
    expect(page.locator("#audit-card")).to_be_hidden()
    headline = "Dyke breach reported near Hoorn"
    post_from_desk(page, headline)
    expect(page.locator("#post-message")).to_contain_text("waits for sign-off")
    mine = row(page, "waiting", headline)
    expect(mine).to_contain_text("needs sign-off")
    for name, count in (("Correct", 1), ("Withdraw", 1), ("Approve", 0), ("Hold", 0)):
        expect(mine.get_by_role("button", name=name, exact=True)).to_have_count(count)
    expect(page.locator("#onair > li")).to_have_count(0)

    page.get_by_role("button", name="Sign out").click()
    sign_in_as(page, ticker_server, settings, "desk-signoff")
    waiting = row(page, "waiting", headline)
    expect(waiting).to_contain_text("needs sign-off")
    expect(waiting.get_by_role("button", name="Hold")).to_have_count(0)
    waiting.get_by_role("button", name="Approve").click()
    wait_until(lambda: reader.got("item", headline=headline, version=2))
    expect(row(page, "onair", headline)).to_have_count(1)
    expect(page.locator("#history > li").first).to_contain_text("desk-signoff")
    expect(page.locator("#history > li").first).to_contain_text("approved")

    row(page, "waiting", other["headline"]).get_by_role("button", name="Reject").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Reject").click()  # no note: the service says so
    expect(dialog.locator("#reject-message")).to_contain_text("must not be empty")
    dialog.get_by_label("Note").fill("One source only: get a second")
    dialog.get_by_role("button", name="Reject").click()
    expect(dialog).to_be_hidden()
    rejected = row(page, "waiting", other["headline"])
    expect(rejected).to_contain_text("Rejected by desk-signoff: One source only: get a second")
    assert not reader.got("item", uri=other["uri"])  # never on air
    assert_clean(watch, ("/reject", 422))


def test_a_double_click_on_post_posts_once(
    page: Page, watch: Watch, ticker_server: TickerProcess, settings: Settings
) -> None:
    sign_in_as(page, ticker_server, settings, "desk-editor")
    form = page.locator("#post-form")
    form.get_by_label("Headline", exact=True).fill("Only once")
    form.get_by_role("button", name="Post").dblclick()
    expect(row(page, "onair", "Only once")).to_have_count(1)
    history = httpx.get(
        f"{ticker_server.url}/channels/en/items", params={"history": "true"}, timeout=10
    ).json()["items"]
    assert [r["headline"] for r in history if r["event"] == "item"] == ["Only once"]
    assert_clean(watch)


def test_an_empty_headline_is_told_at_the_field_and_never_sent(
    page: Page, watch: Watch, ticker_server: TickerProcess, settings: Settings
) -> None:
    sign_in_as(page, ticker_server, settings, "desk-editor")
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    form = page.locator("#post-form")
    form.get_by_label("Headline", exact=True).fill("   ")
    form.get_by_role("button", name="Post").click()
    expect(page.locator("#err-headline")).to_have_text("Write a headline first.")
    expect(page.locator("#f-headline")).to_have_attribute("aria-invalid", "true")
    assert posts == []
    assert_clean(watch)


def test_a_duplicate_post_shows_the_other_item_and_post_anyway_posts_it(
    page: Page, watch: Watch, ticker_server: TickerProcess, settings: Settings
) -> None:
    first = "<b>Rotterdam</b> shooter arrested"
    other = desk_token(settings, "night-editor")
    r = httpx.post(
        f"{ticker_server.url}/channels/en/items",
        json={"headline": first},
        headers={"Authorization": f"Bearer {other}"},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    sign_in_as(page, ticker_server, settings, "desk-editor")
    form = page.locator("#post-form")
    headline = form.get_by_label("Headline", exact=True)
    box = page.locator("#post-duplicate")
    for typed in ("<b>rotterdam</b>  shooter arrested.", "<B>Rotterdam</B> shooter arrested"):
        headline.fill(typed)
        form.get_by_role("button", name="Post").click()
        expect(page.locator("#post-message")).to_contain_text("Not posted")
        expect(box).to_be_visible()
        expect(box).to_contain_text("night-editor posted the same headline")
        expect(box).to_contain_text(first)  # as text, never as markup
        assert box.locator("b").count() == 0
        if typed.endswith("."):
            headline.press("End")
            headline.type("!")  # an edit: no longer what was found to be a duplicate
            expect(box).to_be_hidden()
    box.get_by_role("button", name="Post anyway").click()
    expect(page.locator("#post-message")).to_contain_text("Posted")
    expect(box).to_be_hidden()
    expect(page.locator("#onair > li")).to_have_count(2)
    assert_clean(watch, ("/channels/en/items", 409))


def test_field_errors_from_the_api_show_next_to_their_fields(
    page: Page, watch: Watch, ticker_server: TickerProcess, settings: Settings
) -> None:
    sign_in_as(page, ticker_server, settings, "desk-editor")
    form = page.locator("#post-form")
    headline = form.get_by_label("Headline", exact=True)
    headline.fill("x" * 281)
    expect(page.locator("#count-headline")).to_have_text("281/280")
    form.get_by_label("Link", exact=True).fill("javascript:alert(1)")
    form.get_by_role("button", name="Post").click()
    expect(page.locator("#err-headline")).to_have_text("must be at most 280 characters (got 281)")
    expect(page.locator("#err-link")).to_contain_text("http")
    expect(headline).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#post-message")).to_contain_text("Not posted")
    expect(page.locator("#onair > li")).to_have_count(0)
    assert_clean(watch, ("/channels/en/items", 422))


def test_a_viewer_sees_no_write_buttons_and_a_forced_write_is_refused(
    page: Page, watch: Watch, ticker_server: TickerProcess, settings: Settings
) -> None:
    try:
        token = desk_token(settings, "desk-viewer", role="viewer")
    except InvalidRequest:
        pytest.skip("this service has no viewer role yet (issue #14)")
    ticker_server.post("en", headline="Read, never touched")
    held = ticker_server.post("en", headline="Waiting for a chief")
    ticker_server.patch("en", held["uri"], status="withheld")
    sign_in(page, ticker_server, token)
    expect(page.locator("#who-role")).to_have_text("viewer")
    expect(row(page, "onair", "Read, never touched")).to_have_count(1)
    expect(row(page, "waiting", "Waiting for a chief")).to_have_count(1)
    expect(page.locator("#post-form")).to_be_hidden()
    for name in WRITE_BUTTONS:
        expect(page.get_by_role("button", name=name, exact=True)).to_have_count(0)
    status = page.evaluate(
        """async () => (await fetch("/channels/en/items", {
            method: "POST",
            headers: {"Authorization": "Bearer " + sessionStorage.getItem("ticker.desk.token"),
                      "Content-Type": "application/json"},
            body: JSON.stringify({headline: "Forced"}),
        })).status"""
    )
    assert status == 403
    assert_clean(watch, ("/channels/en/items", 403))


def test_a_markup_headline_is_shown_as_text(
    page: Page, watch: Watch, ticker_server: TickerProcess, settings: Settings
) -> None:
    sign_in_as(page, ticker_server, settings, "desk-editor")
    hostile = "<img src=x onerror=alert(1)>"
    post_from_desk(page, hostile, Source="<script>alert(2)</script>")
    expect(row(page, "onair", hostile)).to_contain_text(f"<script>alert(2)</script>: {hostile}")
    expect(row(page, "history", hostile)).to_have_count(1)
    wait_live(page, "#preview")
    expect(page.locator("#preview .item")).to_have_text([f"<script>alert(2)</script>: {hostile}"])
    page.wait_for_timeout(300)
    assert page.evaluate("document.querySelectorAll('#desk img, #desk script').length") == 0
    assert_clean(watch)


def test_an_arabic_post_runs_right_to_left_in_the_preview(
    page: Page, watch: Watch, ticker_server: TickerProcess, settings: Settings
) -> None:
    sign_in_as(page, ticker_server, settings, "desk-editor")
    page.get_by_label("Channel").select_option("ar")
    expect(page.locator("#preview")).to_have_attribute("channel", "ar")
    headline = "القبض على مطلق النار في روتردام"
    expect(page.locator("#f-headline")).to_have_attribute("dir", "auto")
    post_from_desk(page, headline, Source="الشرطة الهولندية")
    items = page.locator("#preview .item")
    expect(items).to_have_count(1)
    expect(items).to_have_attribute("dir", "rtl")
    expect(items).to_have_attribute("lang", "ar")
    expect(page.locator("#preview .bar")).to_have_attribute("dir", "rtl")
    expect(row(page, "onair", headline).locator(".text")).to_have_attribute("dir", "rtl")
    assert_clean(watch)


def test_an_expired_token_is_told_when_it_expired(
    page: Page, watch: Watch, ticker_server: TickerProcess, settings: Settings
) -> None:
    from tests.test_token_messages import expire

    token = desk_token(settings, "night-desk")
    reads: list[int] = []
    page.on("response", lambda r: reads.append(r.status) if "/queue" in r.url else None)
    sign_in(page, ticker_server, token)
    # The stream's opening asks for one more refresh 120 ms after "Live": let it land
    # first, or it, not the click, meets the expiry (and the click finds no board).
    if len(reads) < 2:  # (events reach `reads` only inside Playwright's calls)
        page.wait_for_event("response", lambda r: "/queue" in r.url, timeout=5000)
    expire(settings, "night-desk")  # its time comes while the desk is open
    # The desk learns it at its next request: this click's read, or, if it comes first,
    # its stream's check of the token at a heartbeat (the board is gone by then).
    with contextlib.suppress(PlaywrightTimeoutError):
        page.get_by_role("button", name="Show the audit").click(timeout=3000)
    expect(page.locator("#signin-message")).to_contain_text("token 'night-desk' expired at ")
    expect(page.locator("#signin-message")).to_contain_text("Sign in again.")
    page.get_by_label("Token", exact=True).fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signin-message")).to_contain_text("token 'night-desk' expired at ")
    expect(page.locator("#desk")).to_be_hidden()


def test_a_wrong_token_gets_a_message_and_no_board(
    page: Page, watch: Watch, ticker_server: TickerProcess
) -> None:
    page.goto(f"{ticker_server.url}/desk")
    page.get_by_label("Token", exact=True).fill("tk_not-a-real-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signin-message")).to_have_text(
        "That token was not accepted: it is wrong, expired or revoked."
    )
    expect(page.locator("#desk")).to_be_hidden()
    expect(page.get_by_label("Token", exact=True)).to_have_attribute("aria-invalid", "true")
    assert page.evaluate("sessionStorage.length") == 0
    assert page.evaluate("document.cookie") == ""
    assert_clean(watch, ("/whoami", 401))


def revoke(settings: Settings, name: str) -> None:
    assert settings.redis_url is not None
    url = settings.redis_url.get_secret_value()

    async def run() -> bool:
        store = Store(url, prefix=settings.key_prefix)
        try:
            return await Tokens(store).revoke(name)
        finally:
            await store.close()

    # A thread of its own: Playwright's sync API has an event loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, run()).result()


def test_a_token_revoked_during_the_session_signs_the_desk_out_with_a_message(
    page: Page, watch: Watch, ticker_server: TickerProcess, settings: Settings
) -> None:
    sign_in_as(page, ticker_server, settings, "desk-editor")
    revoke(settings, "desk-editor")
    ticker_server.post("en", headline="Anything new makes the desk look again")
    expect(page.locator("#signin-message")).to_contain_text("no longer accepted")
    expect(page.locator("#desk")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('ticker.desk.token')") is None
    # The desk's stream is refused too, when it reconnects first (its token is checked).
    assert_clean(watch, ("/items", 401), ("/queue", 401), ("/events", 401))


def test_the_token_stays_in_the_tab_and_signing_out_forgets_it(
    page: Page, watch: Watch, ticker_server: TickerProcess, settings: Settings
) -> None:
    token = desk_token(settings, "desk-editor")
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    sign_in(page, ticker_server, token)
    page.reload()
    expect(page.locator("#who-name")).to_have_text("desk-editor")  # same tab: still in
    assert page.evaluate("document.cookie") == ""
    assert not any(token in url for url in requested)
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#desk")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('ticker.desk.token')") is None
    assert_clean(watch)


def test_a_chief_purges_with_a_reason(
    page: Page, watch: Watch, ticker_server: TickerProcess, settings: Settings
) -> None:
    item = ticker_server.post("en", headline="Libel about a named person")
    sign_in_as(page, ticker_server, settings, "desk-chief", "chief")
    row(page, "onair", item["headline"]).get_by_role("button", name="Purge").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(item["headline"])
    dialog.get_by_label("Reason").fill("court order 2026/17")
    dialog.get_by_role("button", name="Purge").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#onair > li")).to_have_count(0)
    expect(page.locator("#history")).not_to_contain_text(item["headline"])
    r = httpx.get(
        f"{ticker_server.url}/channels/en/items/{item['uri']}",
        headers={"Authorization": f"Bearer {ticker_server.token}"},
        timeout=10,
    )
    assert r.status_code == 404
    assert_clean(watch)


def test_an_editor_gets_no_purge_or_pin_button(
    page: Page, watch: Watch, ticker_server: TickerProcess, settings: Settings
) -> None:
    ticker_server.post("en", headline="On air")
    sign_in_as(page, ticker_server, settings, "desk-editor")
    on_air = row(page, "onair", "On air")
    expect(on_air.get_by_role("button", name="Kill")).to_have_count(1)
    expect(on_air.get_by_role("button", name="Purge")).to_have_count(0)
    expect(on_air.get_by_role("button", name="Pin", exact=True)).to_have_count(0)
    assert_clean(watch)


def test_the_desk_shows_every_list(
    page: Page, watch: Watch, ticker_server: TickerProcess, settings: Settings
) -> None:
    post = ticker_server.post
    post(
        "en",
        headline="Parliament passes the budget after an all-night sitting",
        source="Reuters",
        urgency=4,
        regions=["europe"],
        categories=["politics"],
    )
    killed = post("en", headline="Minister resigns", source="Unconfirmed", urgency=2)
    ticker_server.kill("en", killed["uri"])
    quake = post("en", headline="Magnitude 6.1 earthquake off Chile", source="USGS", urgency=1)
    ticker_server.patch("en", quake["uri"], headline="Magnitude 6.3 earthquake strikes off Chile")
    held = post("en", headline="Club confirms the manager's departure", source="Press office")
    ticker_server.patch("en", held["uri"], status="withheld")
    release = (datetime.now(UTC) + timedelta(minutes=30)).isoformat()
    post("en", headline="Quarterly results: profit up 12%", source="Company",
         embargoed_until=release, categories=["business"])  # fmt: skip
    post("en", headline="Finance minister to brief the press at 18:30", kind="advisory")
    sign_in_as(page, ticker_server, settings, "desk-editor")

    expect(page.locator("#onair > li")).to_have_count(2)
    expect(page.locator("#waiting > li")).to_have_count(2)
    expect(row(page, "waiting", "Quarterly results")).to_contain_text("releases in 29m")
    expect(row(page, "waiting", "manager's departure")).to_contain_text("held")
    expect(page.locator("#advisories > li")).to_have_count(1)
    expect(row(page, "advisories", "brief the press")).to_contain_text("advisory · not on air")
    history = page.locator("#history > li")
    expect(history).to_have_count(9)
    expect(row(page, "history", "Minister resigns").first).to_contain_text("killed")
    wait_live(page, "#preview")
    page.mouse.move(0, 0)
    assert_clean(watch)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "desk.png")


def test_an_advisory_goes_to_its_own_list_never_on_air_and_the_list_updates_live(
    page: Page,
    watch: Watch,
    ticker_server: TickerProcess,
    settings: Settings,
    reader: StreamReader,
) -> None:
    sign_in_as(page, ticker_server, settings, "desk-chief", "chief")
    form = page.locator("#post-form")
    form.get_by_label("Advisory", exact=True).check()
    expect(form.locator("#post")).to_have_text("Post advisory to en")
    form.get_by_label("Headline", exact=True).fill("PM statement expected 18:30")
    form.locator("#post").click()
    expect(page.locator("#post-message")).to_contain_text("Advisory posted (not on air)")
    expect(form.locator("#post")).to_have_text("Post to en")  # the form is reset
    note = row(page, "advisories", "PM statement expected 18:30")
    expect(note).to_contain_text("advisory · not on air")
    expect(note).to_contain_text("by desk-chief")
    expect(note.get_by_role("button", name="Kill")).to_have_count(1)
    expect(note.get_by_role("button", name="Pin")).to_have_count(0)  # a chief's, not here
    # Posted elsewhere (the API): the desk's own stream shows it at once, no poll.
    ticker_server.post("en", headline="Results not before 22:00", kind="advisory")
    expect(row(page, "advisories", "Results not before 22:00")).to_have_count(1, timeout=5000)
    expect(page.locator("#onair > li")).to_have_count(0)
    ticker_server.post("en", headline="Polls close")  # a headline: what readers got
    wait_until(lambda: reader.got("item", headline="Polls close"))
    assert [e["headline"] for e in reader.of("item")] == ["Polls close"]
    assert_clean(watch)


def test_the_desk_page_is_locked_down(ticker_server: TickerProcess) -> None:
    r = httpx.get(f"{ticker_server.url}/desk", timeout=10)
    assert r.status_code == 200
    csp = r.headers["content-security-policy"]
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp
    assert r.headers["cache-control"] == "no-store"
    assert "<script>" not in r.text and "style=" not in r.text
    for path in ("/static/desk.js", "/static/desk.css"):
        assert httpx.get(f"{ticker_server.url}{path}", timeout=10).status_code == 200
    script = httpx.get(f"{ticker_server.url}/static/desk.js", timeout=10).text
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script


def api_knows(server: TickerProcess, token: str, field: str, value: Any) -> bool:
    """Does this service take ``field`` on a post (issue #14), or refuse it as unknown?"""
    r = httpx.post(
        f"{server.url}/channels/es/items",
        json={"headline": f"probe of {field}", field: value},  # not a duplicate of another
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    if r.status_code == 201:
        return True
    assert r.status_code == 422, r.text
    assert {"field": field, "message": "unknown field"} in r.json()["details"]
    return False


def test_newer_fields_are_used_when_the_service_has_them_and_refusals_show_at_the_field(
    page: Page, watch: Watch, ticker_server: TickerProcess, settings: Settings
) -> None:
    chief = desk_token(settings, "desk-chief", role="chief")  # with #14, pins are a chief's
    pins = api_knows(ticker_server, chief, "pinned", True)
    relative_embargo = api_knows(ticker_server, chief, "embargo", "30m")
    sign_in(page, ticker_server, chief)
    form = page.locator("#post-form")

    form.get_by_label("Headline", exact=True).fill("Pinned until further notice")
    form.get_by_label("Pinned", exact=True).check()
    form.get_by_role("button", name="Post").click()
    on_air = row(page, "onair", "Pinned until further notice")
    if pins:
        expect(on_air).to_contain_text("pinned")
        on_air.get_by_role("button", name="Unpin").click()
        expect(on_air.get_by_role("button", name="Pin", exact=True)).to_have_count(1)
    else:
        expect(page.locator("#err-pinned")).to_have_text("unknown field")
        expect(on_air).to_have_count(0)
        form.get_by_label("Pinned", exact=True).uncheck()
        form.get_by_role("button", name="Post").click()
        expect(on_air).to_have_count(1)
        expect(on_air.get_by_role("button", name="Pin", exact=True)).to_have_count(0)

    form.get_by_label("Headline", exact=True).fill("Results at noon")
    form.get_by_label("Embargo", exact=True).fill("30m")
    form.get_by_role("button", name="Post").click()
    if relative_embargo:
        expect(row(page, "waiting", "Results at noon")).to_contain_text("releases in 29m")
    else:
        expect(page.locator("#err-embargo")).to_have_text("unknown field")
        # Today's API: the same embargo as a time.
        release = (datetime.now(UTC) + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
        form.get_by_label("Embargo", exact=True).fill(release)
        form.get_by_role("button", name="Post").click()
        expect(row(page, "waiting", "Results at noon")).to_contain_text("releases in 29m")
    expect(page.locator("#onair")).not_to_contain_text("Results at noon")
    refusals = () if pins and relative_embargo else (("/channels/en/items", 422),)
    assert_clean(watch, *refusals)


def test_a_correction_overtaken_by_another_shows_both_texts_and_the_editor_chooses(
    page: Page, watch: Watch, ticker_server: TickerProcess, settings: Settings
) -> None:
    item = ticker_server.post("en", headline="Death toll rises to three")
    sign_in_as(page, ticker_server, settings, "desk-editor")
    on_air = row(page, "onair", "Death toll rises to three")
    on_air.get_by_role("button", name="Correct").click()
    on_air.get_by_label("Headline", exact=True).fill("Death toll: three, hospital says")
    ticker_server.patch("en", item["uri"], headline="Death toll rises to four")  # the chief

    editor = page.locator("#onair form.editor")
    editor.get_by_role("button", name="Save correction").click()
    choice = editor.get_by_role("alert")
    expect(choice).to_contain_text("server-editor changed this item while you were editing")
    expect(choice.locator(".newer")).to_contain_text("Death toll rises to four")
    expect(choice.locator(".mine")).to_contain_text("Death toll: three, hospital says")
    public = httpx.get(f"{ticker_server.url}/channels/en/items/{item['uri']}", timeout=10)
    assert public.json()["headline"] == "Death toll rises to four"  # nothing saved over it

    choice.get_by_role("button", name="Take the newer text").click()
    expect(editor.get_by_label("Headline", exact=True)).to_have_value("Death toll rises to four")
    ticker_server.patch("en", item["uri"], urgency=2)  # overtaken once more
    editor.get_by_label("Headline", exact=True).fill("Death toll rises to four, police say")
    editor.get_by_role("button", name="Save correction").click()
    expect(choice).to_contain_text("now version 3")
    choice.get_by_role("button", name="Keep my draft").click()
    expect(page.locator("#board-message")).to_contain_text("Corrected")
    expect(page.locator("#onair form.editor")).to_have_count(0)
    saved = httpx.get(f"{ticker_server.url}/channels/en/items/{item['uri']}", timeout=10).json()
    assert (saved["version"], saved["headline"]) == (4, "Death toll rises to four, police say")
    assert saved["urgency"] == 2  # the other editor's change stays
    assert_clean(watch, ("/items/" + item["uri"], 409))


def test_an_embargo_typed_as_a_clock_time_waits_and_release_puts_it_on_air(
    page: Page, watch: Watch, ticker_server: TickerProcess, settings: Settings
) -> None:
    sign_in_as(page, ticker_server, settings, "desk-editor")
    at = (datetime.now(UTC) + timedelta(hours=2)).strftime("%H:%M")  # the channel is in UTC
    post_from_desk(page, "Results at noon", Embargo=at)
    waiting = row(page, "waiting", "Results at noon")
    expect(waiting).to_contain_text("releases in 1h 5")
    waiting.get_by_role("button", name="Release").click()
    expect(row(page, "onair", "Results at noon")).to_have_count(1)
    expect(page.locator("#waiting > li")).to_have_count(0)
    expect(page.locator("#history > li").first).to_contain_text("embargo lifted")
    expect(page.locator("#post-form").get_by_label("Embargo", exact=True)).to_have_attribute(
        "placeholder", "30m, 18:30 or a date"
    )
    assert_clean(watch)


def test_the_audit_view_lists_kills_and_purges_and_is_not_a_viewers(
    page: Page, watch: Watch, ticker_server: TickerProcess, settings: Settings
) -> None:
    killed = ticker_server.post("en", headline="Killed story")
    purged = ticker_server.post("en", headline="Purged libel")
    ticker_server.kill("en", killed["uri"])
    chief = desk_token(settings, "audit-chief", role="chief")
    r = httpx.post(
        f"{ticker_server.url}/channels/en/items/{purged['uri']}/purge",
        json={"reason": "court order 2026/18"},
        headers={"Authorization": f"Bearer {chief}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    sign_in(page, ticker_server, chief)
    show = page.get_by_role("button", name="Show the audit")
    show.click()
    records = page.locator("#audit > li")
    expect(records).to_have_count(2)
    for n, words in enumerate(
        (
            ("audit-chief", "purged", purged["uri"], "Reason: court order 2026/18"),
            ("server-editor", "killed", killed["uri"]),
        )
    ):
        for word in words:
            expect(records.nth(n)).to_contain_text(word)
    card = page.locator("#audit-card")
    expect(card).not_to_contain_text("Killed story")
    expect(card).not_to_contain_text("Purged libel")

    # A kill made while the view is open shows up at the top.
    ticker_server.post("en", headline="Killed from the desk")
    row(page, "onair", "Killed from the desk").get_by_role("button", name="Kill").click()
    page.get_by_role("dialog").get_by_role("button", name="Kill").click()
    expect(records).to_have_count(3)
    expect(records.nth(0)).to_contain_text("audit-chief")
    expect(records.nth(0)).to_contain_text("killed")
    page.get_by_role("button", name="Hide the audit").click()
    expect(records).to_have_count(0)
    assert_clean(watch)

    # A viewer's desk has no audit at all.
    page.get_by_role("button", name="Sign out").click()
    sign_in_as(page, ticker_server, settings, "audit-viewer", "viewer")
    expect(card).to_be_hidden()
