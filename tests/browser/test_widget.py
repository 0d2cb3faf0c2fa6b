"""The <breaking-ticker> widget in a real browser, against a real ticker process.

Each test embeds the widget on a page of another origin (as a site owner would), acts
through the public API, and checks what the reader gets.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from playwright.sync_api import Page, expect

from tests.browser.conftest import NewsSite, Watch, wait_live
from tests.helpers import TickerProcess, make_token, wait_until
from ticker.server.demo import DEMO_EVERY, DEMO_TTL, SAMPLES, run_demo
from ticker.settings import Settings

pytestmark = pytest.mark.server_per_module


@pytest.fixture(scope="module")
def module_server_env() -> dict[str, str]:
    # en and ar show kill notices; en marks corrections for 2 s only (the mark's end).
    # The other tests mark and note nothing.
    return {
        "TICKER_CHANNELS": json.dumps(
            [
                {"name": "en", "language": "en", "kill_notices": True, "correction_mark_s": 2},
                {"name": "ar", "language": "ar", "kill_notices": True},
                {"name": "es", "language": "es"},
            ]
        )
    }


Embed = Callable[..., None]
ARTIFACTS = Path(__file__).parents[1] / "artifacts"

WIDGET = "breaking-ticker"
ITEMS = f"{WIDGET} .track .item"
ANNOUNCEMENTS = (
    f"() => {{ const r = document.querySelector('{WIDGET}').shadowRoot; return "
    "[...r.querySelectorAll('[role=log] p, [aria-live=assertive] p')].map(p => p.textContent); }"
)


def items(page: Page) -> list[str]:
    return page.locator(ITEMS).all_text_contents()


def shadow(page: Page, script: str) -> Any:
    """Evaluate ``script`` (a function body) with ``root``, the widget's shadow root."""
    return page.evaluate(
        f"() => {{ const root = document.querySelector('{WIDGET}').shadowRoot; {script} }}"
    )


def track_x(page: Page) -> float:
    return float(shadow(page, "return root.querySelector('.track').getBoundingClientRect().x;"))


def play_states(page: Page) -> list[str]:
    return list(
        shadow(page, "return root.querySelector('.track').getAnimations().map(a => a.playState);")
    )


def test_posted_item_appears_within_a_second(
    page: Page, embed: Embed, ticker_server: TickerProcess
) -> None:
    embed(ticker_server.url)
    ticker_server.post(
        "en",
        headline="Rotterdam shooter arrested",
        source="Dutch Police",
        urgency=2,
        link="https://example.com/rotterdam",
    )
    expect(page.locator(ITEMS)).to_have_text(
        ["Dutch Police: Rotterdam shooter arrested"], timeout=1000
    )
    link = page.locator(f"{ITEMS} a")
    expect(link).to_have_attribute("href", "https://example.com/rotterdam")
    expect(link).to_have_attribute("rel", "noopener")
    expect(page.locator(ITEMS).first).to_have_attribute("data-urgency", "2")


def test_the_loop_runs_newest_first_and_a_new_item_joins_the_pass_under_way(
    page: Page, embed: Embed, ticker_server: TickerProcess
) -> None:
    ticker_server.post("en", headline="First")
    ticker_server.post("en", headline="Second")
    embed(ticker_server.url)
    expect(page.locator(ITEMS)).to_have_text(["Second", "First"])
    wait_until(lambda: play_states(page) == ["running"], timeout=5)
    before = track_x(page)
    ticker_server.post("en", headline="Third")
    # It joins the pass under way, after both (on screen already): the strip goes on from
    # where it was, not from the start.
    expect(page.locator(ITEMS)).to_have_text(["Second", "First", "Third"])
    assert track_x(page) <= before


# From the frame a headline first is in the track: the order in which headlines come into
# the bar's viewport, with the milliseconds since then.
RECORD_NEXT_IN = """headline => {
  const root = document.querySelector('breaking-ticker').shadowRoot;
  const log = (window.__next = { arrived: false, entered: [] });
  let before = new Map();
  let start = 0;
  const tick = (now) => {
    const view = root.querySelector('.viewport').getBoundingClientRect();
    const shown = new Map([...root.querySelectorAll('.track .item')].map(node => {
      const box = node.getBoundingClientRect();
      return [node.textContent, box.left < view.right && box.right > view.left];
    }));
    if (!log.arrived && shown.has(headline)) {
      log.arrived = true;
      start = now;
      before.set(headline, false);
    }
    if (log.arrived) {
      for (const [text, visible] of shown) {
        if (visible && !before.get(text)) log.entered.push({ text, after: now - start });
      }
    }
    before = shown;
    if (log.entered.length < 2) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""


@pytest.mark.parametrize(
    ("channel", "story", "headline"),
    [
        ("en", "Story {n:02d}: the council votes on the harbour plan", "Ferry service resumes"),
        ("ar", "خبر {n:02d}: المجلس البلدي يصوت على خطة الميناء", "استئناف خدمة العبارات"),
    ],
    ids=["ltr", "rtl"],
)
def test_a_new_item_is_the_next_headline_in_with_fifteen_on_the_bar(
    page: Page, embed: Embed, ticker_server: TickerProcess, channel: str, story: str, headline: str
) -> None:
    for n in range(15):
        ticker_server.post(channel, headline=story.format(n=n))
    embed(ticker_server.url, channel=channel)
    expect(page.locator(ITEMS)).to_have_count(15)
    speed = 400  # pixels per second: the widget's own setting, for a short dwell
    page.evaluate(
        f"document.querySelector('{WIDGET}').style.setProperty('--ticker-speed', '{speed}')"
    )
    page.mouse.move(0, 500)  # off the bar: hovering would pause it
    wait_until(lambda: play_states(page) == ["running"], timeout=5)
    page.wait_for_timeout(1000)  # well into the pass: some gone by, most still to come
    widths = shadow(
        page,
        "return [...root.querySelectorAll('.track .item')]"
        ".map(n => n.getBoundingClientRect().width);",
    )
    view = shadow(page, "return root.querySelector('.viewport').clientWidth;")
    assert sum(widths) > 3 * view  # the loop is long: the end of it is far away
    # The longest a headline takes to come wholly into view: one headline's dwell.
    dwell_ms = max(widths) / speed * 1000

    page.evaluate(RECORD_NEXT_IN, headline)
    ticker_server.post(channel, headline=headline, urgency=3)
    # A frame or two of slack for the frame it arrived in.
    wait_until(lambda: page.evaluate("window.__next.entered.length") >= 1, timeout=5)
    first = page.evaluate("window.__next.entered[0]")
    assert first["text"] == headline, page.evaluate("window.__next")
    assert first["after"] <= dwell_ms + 50, (first, dwell_ms)
    assert items(page)[0] != headline  # it did not restart the strip: it came next


def test_a_pinned_item_leads_the_loop(
    page: Page, embed: Embed, ticker_server: TickerProcess, settings: Settings
) -> None:
    chief = make_token(settings, "chief", ["en"], role="chief")

    def pin(headline: str) -> None:
        r = httpx.post(
            f"{ticker_server.url}/channels/en/items",
            json={"headline": headline, "pinned": True},
            headers={"Authorization": f"Bearer {chief}"},
            timeout=10,
        )
        assert r.status_code == 201, r.text

    pin("Pinned")
    ticker_server.post("en", headline="First")
    ticker_server.post("en", headline="Second")
    embed(ticker_server.url)
    expect(page.locator(ITEMS)).to_have_text(["Pinned", "Second", "First"])
    wait_until(lambda: play_states(page) == ["running"], timeout=5)
    pin("Pinned later")  # shown at once, first
    expect(page.locator(ITEMS).first).to_have_text("Pinned later")


# Per animation frame, which edges of each headline were inside the bar's viewport.
RECORD_EDGES = """() => {
  const root = document.querySelector('breaking-ticker').shadowRoot;
  const seen = (window.__seen = {});
  const tick = () => {
    const view = root.querySelector('.viewport').getBoundingClientRect();
    for (const node of root.querySelectorAll('.track .item')) {
      const box = node.getBoundingClientRect();
      const key = node.querySelector('.headline').textContent;
      const s = (seen[key] ??= { start: false, end: false, whole: false });
      const startIn = box.left >= view.left - 1 && box.left < view.right;
      const endIn = box.right <= view.right + 1 && box.right > view.left;
      s.start ||= startIn;
      s.end ||= endIn;
      s.whole ||= startIn && endIn;
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""


def in_view(page: Page, headline: str) -> bool:
    return bool(
        shadow(
            page,
            f"""const view = root.querySelector('.viewport').getBoundingClientRect();
            const node = [...root.querySelectorAll('.track .item')]
                .find(n => n.textContent === {headline!r});
            if (!node) return false;
            const box = node.getBoundingClientRect();
            return box.left < view.right && box.right > view.left;""",
        )
    )


@pytest.mark.timeout(150)
def test_every_headline_gets_a_full_pass_with_an_item_every_second(
    page: Page, embed: Embed, ticker_server: TickerProcess
) -> None:
    # The demo's problem, faster: an item a second for 20 s, some too long for the bar.
    embed(ticker_server.url)
    page.evaluate(f"document.querySelector('{WIDGET}').style.setProperty('--ticker-speed', '400')")
    page.evaluate(RECORD_EDGES)
    headlines = []
    for n in range(20):
        headline = f"Item {n:02d}: " + (
            "a very long headline that goes on and on across the bar " * 4
            if n % 5 == 2
            else "short"
        )
        headlines.append(headline[:180])
        ticker_server.post("en", headline=headlines[-1])
        time.sleep(1)
    assert any(len(h) == 180 for h in headlines)

    def unread(among: list[str]) -> list[str]:
        seen = page.evaluate("window.__seen")
        return [h for h in among if not (seen.get(h, {}).get("start") and seen[h]["end"])]

    # While items still come (restarting for each would show only the newest, and never
    # the end of a long one), the first ten were read end to end; then all of them are.
    assert unread(headlines[:10]) == []
    wait_until(lambda: unread(headlines) == [], timeout=90)
    seen = page.evaluate("window.__seen")
    wider = shadow(page, "return root.querySelector('.viewport').clientWidth;")
    short = [h for h in headlines if len(h) < 40]
    assert all(seen[h]["whole"] for h in short), (wider, seen)


def test_an_urgent_item_interrupts_and_then_the_loop_goes_on(
    page: Page, embed: Embed, ticker_server: TickerProcess
) -> None:
    long = "Parliament debates the budget late into the night, with no vote expected " * 2
    for n in range(3):
        ticker_server.post("en", headline=f"{n} {long}".strip())
    embed(ticker_server.url)
    wait_until(lambda: play_states(page) == ["running"], timeout=5)
    page.wait_for_timeout(1500)
    reading = next(h for h in items(page) if in_view(page, h))
    ticker_server.post("en", headline="Earthquake strikes", urgency=1)
    expect(page.locator(ITEMS).first).to_have_text("Earthquake strikes", timeout=1000)
    assert in_view(page, "Earthquake strikes")
    # Next in line: what was being read when it came.
    assert items(page)[1] == reading
    # A routine item does not interrupt: it comes next, after what is on screen.
    ticker_server.post("en", headline="Routine notice", urgency=5)
    expect(page.locator(ITEMS)).to_have_count(5)
    assert items(page)[:3] == ["Earthquake strikes", reading, "Routine notice"]
    assert in_view(page, "Earthquake strikes")


def test_the_demo_is_gentle_and_an_editors_post_stays_on_the_bar(
    page: Page, embed: Embed, ticker_server: TickerProcess, settings: Settings
) -> None:
    # As configured: a few demo items per channel at most, gone within minutes, and not
    # the README's own example.
    channels = len({sample[0] for sample in SAMPLES})
    assert DEMO_TTL / (DEMO_EVERY * channels) <= settings.channels[0].live_max_items / 4
    assert timedelta(minutes=10) >= DEMO_TTL
    assert not any("Rotterdam" in sample[2] for sample in SAMPLES)

    embed(ticker_server.url)
    ticker_server.post("en", headline="Our own story stays")
    # The same loop as `serve --demo`, sped up: six rounds are more demo posts per channel
    # than the bar holds (live_max_items).
    stop = threading.Event()
    every, ttl = timedelta(seconds=0.1), timedelta(seconds=1)
    demo = threading.Thread(
        target=lambda: asyncio.run(run_demo(settings, stop, every=every, ttl=ttl))
    )
    demo.start()
    try:

        def demo_posts() -> int:
            r = httpx.get(
                f"{ticker_server.url}/channels/en/items",
                params={"history": "true", "limit": 500},
                timeout=10,
            )
            return sum(e["event"] == "item" for e in r.json()["items"])

        rounds = 6 * len(SAMPLES) // channels
        assert rounds > settings.channels[0].live_max_items
        wait_until(lambda: demo_posts() >= rounds, timeout=40)
    finally:
        stop.set()
        demo.join(10)
    expect(page.locator(ITEMS).filter(has_text="Our own story stays")).to_have_count(1)
    assert len(items(page)) <= 1 + 4, items(page)


def test_correction_replaces_the_item_in_place(
    page: Page, embed: Embed, ticker_server: TickerProcess
) -> None:
    embed(ticker_server.url)
    item = ticker_server.post("en", headline="Minister resigns", source="Reuters")
    expect(page.locator(ITEMS)).to_have_text(["Reuters: Minister resigns"])
    node = page.locator(ITEMS).first.element_handle()

    ticker_server.patch("en", item["uri"], headline="Minister offers to resign")
    expect(page.locator(ITEMS)).to_have_text(["Reuters: Minister offers to resign"])
    assert node.evaluate("n => n.isConnected"), "the correction must reuse the same element"


def test_kill_removes_the_item(page: Page, embed: Embed, ticker_server: TickerProcess) -> None:
    embed(ticker_server.url)
    keep = ticker_server.post("en", headline="Stays on the ticker")
    doomed = ticker_server.post("en", headline="Wrongly reported")
    expect(page.locator(ITEMS)).to_have_count(2)
    ticker_server.kill("en", doomed["uri"])
    expect(page.locator(ITEMS)).to_have_text([keep["headline"]])


MARK = f"{ITEMS} .mark"
# Polled every frame (not every 100 ms as `expect` does): a note on a fast strip is brief.
NOTE_SHOWN = """notice => {
  const root = document.querySelector('breaking-ticker').shadowRoot;
  const node = root.querySelector('.track .item.notice');
  if (!node || node.textContent !== notice) return null;
  return {
    order: [...root.querySelectorAll('.track .item')].map(n => n.textContent),
    dir: node.getAttribute('dir'),
    announced: [...root.querySelectorAll('[role=log] p')].map(p => p.textContent),
  };
}"""


def mark_then_kill_with_notice(
    page: Page, embed: Embed, server: TickerProcess, channel: str, **words: str
) -> tuple[str, str]:
    """Two items on the bar: a typo fixed in silence, then a marked correction (checked:
    the mark in the bar's language and direction, in the item and its spoken text); then
    the other item killed with a note (checked: in its place, announced, for one pass).
    Returns (the corrected item's uri, its text as the bar shows it)."""
    typo, fixed, corrected = words["typo"], words["fixed"], words["corrected"]
    doomed, notice, updated = words["doomed"], words["notice"], words["updated"]
    stem = typo.rsplit(" ", 1)[0]
    direction = "rtl" if channel == "ar" else "ltr"
    item = server.post(channel, headline=typo)
    killed = server.post(channel, headline=doomed)
    embed(server.url, channel=channel)
    page.evaluate(f"document.querySelector('{WIDGET}').style.setProperty('--ticker-speed', '4000')")
    server.patch(channel, item["uri"], headline=f"{stem} {fixed}")
    expect(page.locator(ITEMS)).to_have_text([doomed, f"{stem} {fixed}"])
    expect(page.locator(MARK)).to_have_count(0)  # a typo fixed without a notice: silent

    server.patch(channel, item["uri"], headline=f"{stem} {corrected}", notice="corrected")
    shown_text = f"{stem} {corrected} {updated}"
    expect(page.locator(ITEMS)).to_have_text([doomed, shown_text])
    expect(page.locator(MARK)).to_have_attribute("lang", channel)
    expect(page.locator(MARK)).to_have_attribute("dir", direction)
    spoken = f"{stem} {corrected} ({updated})"
    assert page.evaluate(ANNOUNCEMENTS) == [spoken, doomed]

    wait_until(lambda: play_states(page) == ["running"], timeout=5)
    server.kill(channel, killed["uri"], notice)
    shown = page.wait_for_function(NOTE_SHOWN, arg=notice, polling="raf").json_value()
    assert shown["order"] == [notice, shown_text]  # in the item's place
    assert shown["dir"] == direction
    assert shown["announced"] == [spoken, notice]  # the note is news: announced
    # One pass (two at most, as it was on screen), then it goes.
    expect(page.locator(ITEMS)).to_have_count(1, timeout=5000)
    assert page.evaluate(ANNOUNCEMENTS) == [spoken]
    return item["uri"], shown_text


def test_updated_marks_a_correction_until_the_window_ends_and_a_kill_notice_takes_its_place(
    page: Page, embed: Embed, ticker_server: TickerProcess
) -> None:
    mark_then_kill_with_notice(  # en: correction_mark_s 2
        page,
        embed,
        ticker_server,
        "en",
        typo="Death toll rises to thre",
        fixed="three",
        corrected="four",
        doomed="Minister resigns",
        notice="Withdrawn: not confirmed",
        updated="Updated",
    )
    # The window ends: the mark leaves by itself, from the bar and the spoken text.
    page.wait_for_function(
        f"() => !document.querySelector('{WIDGET}').shadowRoot.querySelector('.mark')",
        timeout=5000,
    )
    expect(page.locator(ITEMS)).to_have_text(["Death toll rises to four"])
    assert page.evaluate(ANNOUNCEMENTS) == ["Death toll rises to four"]


def test_the_mark_and_the_kill_notice_run_right_to_left_in_the_arabic_edition(
    page: Page, embed: Embed, ticker_server: TickerProcess
) -> None:
    uri, _ = mark_then_kill_with_notice(
        page,
        embed,
        ticker_server,
        "ar",
        typo="ارتفاع عدد القتلى إلى ثلاثه",
        fixed="ثلاثة",
        corrected="أربعة",
        doomed="استقالة الوزير",
        notice="سُحب الخبر: غير مؤكد",
        updated="محدّث",
    )
    # A silent fix later keeps the mark, and a reader who comes now gets it too.
    ticker_server.patch("ar", uri, source="رويترز")
    embed(ticker_server.url, channel="ar")
    expect(page.locator(ITEMS)).to_have_text(["رويترز: ارتفاع عدد القتلى إلى أربعة محدّث"])


def test_the_mark_window_and_a_notice_are_read_by_pure_functions(
    page: Page, news_site: NewsSite, ticker_server: TickerProcess
) -> None:
    news_site.html = b"<!doctype html><title>blank</title>"
    page.goto(f"{news_site.url}/")
    got = page.evaluate(
        """async (src) => {
          const w = await import(`${src}/widget.js`);
          const item = w.readItem({uri: 'a', headline: 'h', corrected_at: '2026-11-26T18:00:00Z'});
          return {
            corrected: item.corrected,
            until: w.markUntil(item, 600000),
            unmarked: w.markUntil(w.readItem({uri: 'a', headline: 'h'}), 600000),
            off: w.markUntil(item, 0),
            notices: [
              w.readNotice({uri: 'a', reason: 'kill', notice: ' Withdrawn:\\nnot true '}),
              w.readNotice({uri: 'a', reason: 'kill', notice: 'x'.repeat(300)}).length,
              // 280 characters as the service counts them (code points) stay whole.
              [...w.readNotice({reason: 'kill', notice: '\\u{1F4F0}'.repeat(281)})].length,
              w.readNotice({uri: 'a', reason: 'expire', notice: 'Withdrawn'}),
              w.readNotice({uri: 'a', reason: 'kill', notice: 5}),
              w.readNotice({uri: 'a', reason: 'kill', notice: '  '}),
              w.readNotice({uri: 'a', reason: 'kill'}),
            ],
          };
        }""",
        ticker_server.url,
    )
    corrected = int(datetime(2026, 11, 26, 18, tzinfo=UTC).timestamp() * 1000)
    assert got == {
        "corrected": corrected,
        "until": corrected + 600_000,
        "unmarked": 0,
        "off": 0,
        "notices": ["Withdrawn: not true", 280, 280, None, None, None, None],
    }


def test_expired_item_is_dropped(page: Page, embed: Embed, ticker_server: TickerProcess) -> None:
    embed(ticker_server.url)
    ticker_server.post("en", headline="Gone in two seconds", ttl="2s")
    expect(page.locator(ITEMS)).to_have_count(1)
    expect(page.locator(ITEMS)).to_have_count(0, timeout=5000)


@pytest.mark.own_server  # stops its server
def test_offline_reader_drops_expired_items_by_itself(
    page: Page, embed: Embed, ticker_server: TickerProcess
) -> None:
    embed(ticker_server.url)
    ticker_server.post("en", headline="Short-lived", ttl="3s")
    expect(page.locator(ITEMS)).to_have_count(1)
    ticker_server.stop()  # no `remove` can come now: the widget must drop it at expires_at
    expect(page.locator(ITEMS)).to_have_count(0, timeout=6000)


@pytest.mark.own_server  # stops its server
def test_server_restart_shows_reconnecting_then_catches_up_without_duplicates(
    page: Page, embed: Embed, ticker_server: TickerProcess, tmp_path: Path
) -> None:
    embed(ticker_server.url)
    ticker_server.post("en", headline="Before the restart")
    expect(page.locator(ITEMS)).to_have_count(1)
    status = page.locator(f"{WIDGET} .status")
    expect(status).to_be_hidden()

    ticker_server.stop()
    expect(status).to_be_visible(timeout=5000)
    expect(status).to_have_text("Reconnecting…")

    # Another ticker process (a second worker) takes the writes while ours is down.
    other = TickerProcess(ticker_server.env, log=tmp_path / "other.log")
    other.token = ticker_server.token
    other.start()
    try:
        other.post("en", headline="While down, one")
        other.post("en", headline="While down, two")
    finally:
        other.stop()

    ticker_server.start()
    expect(page.locator(ITEMS)).to_have_text(
        ["While down, two", "While down, one", "Before the restart"], timeout=10_000
    )
    expect(status).to_be_hidden()
    ticker_server.post("en", headline="After the restart")
    expect(page.locator(ITEMS)).to_have_count(4)
    time.sleep(0.5)  # anything sent twice would have arrived by now
    shown = items(page)
    assert sorted(shown) == sorted(set(shown)), shown
    announced = page.evaluate(ANNOUNCEMENTS)
    assert sorted(announced) == sorted(set(announced)), announced


@pytest.mark.own_server  # stops its server
def test_reset_keeps_what_is_still_current_and_drops_the_rest(
    page: Page, embed: Embed, ticker_server: TickerProcess, redis_url: str, prefix: str
) -> None:
    embed(ticker_server.url)
    ticker_server.post("en", headline="Lost with the data")
    expect(page.locator(ITEMS)).to_have_count(1)
    ticker_server.stop()
    # The channel's data is gone (docs/streams.md keys): the widget's Last-Event-ID cannot
    # be resumed, so the server answers with `reset` and the current items.
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:{{en}}:*"))
        assert keys
        client.delete(*keys)
    finally:
        client.close()
    ticker_server.start()
    ticker_server.post("en", headline="Current after the loss")
    expect(page.locator(ITEMS)).to_have_text(["Current after the loss"], timeout=10_000)
    assert page.evaluate(ANNOUNCEMENTS) == ["Current after the loss"]


def test_arabic_edition_runs_right_to_left(
    page: Page, embed: Embed, ticker_server: TickerProcess
) -> None:
    embed(ticker_server.url, channel="ar")
    ticker_server.post(
        "ar", headline="القبض على مطلق النار في روتردام", source="الشرطة الهولندية", urgency=2
    )
    expect(page.locator(ITEMS)).to_have_count(1)
    expect(page.locator(f"{WIDGET} .bar")).to_have_attribute("dir", "rtl")
    expect(page.locator(f"{WIDGET} .track")).to_have_attribute("dir", "rtl")
    expect(page.locator(ITEMS)).to_have_attribute("dir", "rtl")
    expect(page.locator(ITEMS)).to_have_attribute("lang", "ar")
    expect(page.locator(f"{WIDGET} .label")).to_have_text("عاجل")
    # Source and headline are bidi-isolated from each other.
    expect(page.locator(f"{ITEMS} bdi")).to_have_text(
        ["الشرطة الهولندية", "القبض على مطلق النار في روتردام"]
    )
    # The strip moves left to right.
    before = track_x(page)
    time.sleep(0.5)
    assert track_x(page) > before


def test_english_item_in_an_arabic_edition_keeps_its_own_direction(
    page: Page, embed: Embed, ticker_server: TickerProcess
) -> None:
    embed(ticker_server.url, channel="ar")
    ticker_server.post("ar", headline="Quote in English", language="en")
    expect(page.locator(ITEMS)).to_have_attribute("dir", "ltr")
    expect(page.locator(f"{WIDGET} .bar")).to_have_attribute("dir", "rtl")


def test_headline_markup_is_shown_as_text_and_never_run(
    page: Page, embed: Embed, watch: Watch, ticker_server: TickerProcess
) -> None:
    embed(ticker_server.url)
    hostile = "<img src=x onerror=alert(1)>"
    ticker_server.post("en", headline=hostile, source="<script>alert(2)</script>")
    expect(page.locator(ITEMS)).to_have_text([f"<script>alert(2)</script>: {hostile}"])
    page.wait_for_timeout(300)
    assert shadow(page, "return root.querySelectorAll('img, script').length;") == 0
    assert watch.dialogs == []
    assert watch.errors == []


def test_javascript_link_is_never_clickable(
    page: Page, embed: Embed, ticker_server: TickerProcess
) -> None:
    # The server refuses it...
    r = httpx.post(
        f"{ticker_server.url}/channels/en/items",
        json={"headline": "Click me", "link": "javascript:alert(1)"},
        headers={"Authorization": f"Bearer {ticker_server.token}"},
    )
    assert r.status_code == 422, r.text
    # ...and the widget's own guard would not make a link of it either.
    embed(ticker_server.url)
    verdicts = page.evaluate(
        """async url => {
            const { safeHref } = await import(url + "/widget.js");
            return [
                "javascript:alert(1)", " JavaScript:alert(1)", "data:text/html,<b>x</b>",
                "vbscript:msgbox(1)", "/relative/path", "//example.com/x", "", null,
                "https://ok.example/news?id=1", "http://ok.example/",
            ].map(safeHref);
        }""",
        ticker_server.url,
    )
    assert verdicts == [None] * 8 + ["https://ok.example/news?id=1", "http://ok.example/"]
    # An item without a link is plain text.
    ticker_server.post("en", headline="No link here")
    expect(page.locator(ITEMS)).to_have_count(1)
    expect(page.locator(f"{ITEMS} a")).to_have_count(0)


def test_pause_button_stops_and_restarts_the_strip(
    page: Page, embed: Embed, ticker_server: TickerProcess
) -> None:
    embed(ticker_server.url)
    ticker_server.post("en", headline="A headline long enough to scroll across the bar")
    expect(page.locator(ITEMS)).to_have_count(1)
    wait_until(lambda: play_states(page) == ["running"], timeout=5)
    button = page.get_by_role("button", name="Pause the ticker")
    expect(button).to_have_attribute("aria-pressed", "false")

    button.click()
    expect(button).to_have_attribute("aria-pressed", "true")
    page.mouse.move(0, 500)  # off the bar: hovering pauses too, and must not hide a bug
    assert play_states(page) == ["paused"]
    still = track_x(page)
    time.sleep(0.4)
    assert track_x(page) == still

    button.click()
    expect(button).to_have_attribute("aria-pressed", "false")
    page.mouse.move(0, 500)
    wait_until(lambda: play_states(page) == ["running"], timeout=5)


def test_hover_and_focus_pause_the_strip(
    page: Page, embed: Embed, ticker_server: TickerProcess
) -> None:
    embed(ticker_server.url)
    ticker_server.post("en", headline="Hover over me", link="https://example.com/hover")
    expect(page.locator(ITEMS)).to_have_count(1)
    wait_until(lambda: play_states(page) == ["running"], timeout=5)
    page.locator(f"{WIDGET} .label").hover()
    wait_until(lambda: play_states(page) == ["paused"], timeout=5)
    page.mouse.move(0, 500)
    wait_until(lambda: play_states(page) == ["running"], timeout=5)

    # A keyboard user tabbing to a link gets a still, exposed strip until focus leaves.
    track = page.locator(f"{WIDGET} .track")
    expect(track).to_have_attribute("aria-hidden", "true")
    page.keyboard.press("Tab")
    expect(page.locator(f"{ITEMS} a")).to_be_focused()
    assert play_states(page) == []
    expect(track).not_to_have_attribute("aria-hidden", "true")
    page.keyboard.press("Tab")  # to the pause button: the strip runs and is hidden again
    expect(page.locator(f"{WIDGET} .pause")).to_be_focused()
    expect(track).to_have_attribute("aria-hidden", "true")
    wait_until(lambda: play_states(page) == ["running"], timeout=5)
    page.keyboard.press("Space")
    wait_until(lambda: play_states(page) == ["paused"], timeout=5)
    page.keyboard.press("Tab")  # out of the widget: still paused, by the button
    expect(page.locator("#after")).to_be_focused()
    assert play_states(page) == ["paused"]


def test_reduced_motion_shows_a_still_list(
    page: Page, embed: Embed, ticker_server: TickerProcess
) -> None:
    page.emulate_media(reduced_motion="reduce")
    embed(ticker_server.url)
    ticker_server.post("en", headline="Nothing moves")
    expect(page.locator(ITEMS)).to_have_count(1)
    page.wait_for_timeout(300)
    assert play_states(page) == []
    expect(page.locator(f"{WIDGET} .pause")).to_be_hidden()
    expect(page.locator(ITEMS)).to_be_in_viewport()

    page.emulate_media(reduced_motion="no-preference")  # the preference can change live
    wait_until(lambda: play_states(page) == ["running"], timeout=5)


def test_live_region_announces_a_new_item_once(
    page: Page, embed: Embed, ticker_server: TickerProcess
) -> None:
    ticker_server.post("en", headline="Already on the ticker")
    embed(ticker_server.url)
    log = page.locator(f"{WIDGET} [role=log]")
    expect(log).to_have_text("Already on the ticker")  # there to read, attached silently

    item = ticker_server.post("en", headline="Storm makes landfall", source="AP")
    expect(log.locator("p")).to_have_text(["Already on the ticker", "AP: Storm makes landfall"])
    ticker_server.patch("en", item["uri"], headline="Hurricane makes landfall")
    expect(page.locator(ITEMS).last).to_have_text("AP: Hurricane makes landfall")
    page.wait_for_timeout(300)
    announced = page.evaluate(ANNOUNCEMENTS)
    assert announced == ["Already on the ticker", "AP: Hurricane makes landfall"]
    assert sum("landfall" in text for text in announced) == 1

    # A flash goes to the assertive region, once; a kill takes its text away.
    flash = ticker_server.post("en", headline="Earthquake", urgency=1)
    alert = page.locator(f"{WIDGET} [aria-live=assertive]")
    expect(alert).to_have_text("Earthquake")
    expect(log).not_to_contain_text("Earthquake")
    ticker_server.kill("en", flash["uri"])
    expect(alert).to_have_text("")


def test_filters_are_sent_to_the_server_and_applied(
    page: Page, embed: Embed, ticker_server: TickerProcess
) -> None:
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url) if "/events" in r.url else None)
    embed(ticker_server.url, region="europe", category="crime,politics", max_urgency="3")
    assert requested and requested[0].endswith(
        "/channels/en/events?region=europe&category=crime%2Cpolitics&max_urgency=3"
    ), requested
    ticker_server.post(
        "en", headline="Too mild", urgency=5, regions=["europe"], categories=["crime"]
    )
    ticker_server.post(
        "en", headline="Elsewhere", urgency=2, regions=["asia"], categories=["crime"]
    )
    ticker_server.post(
        "en", headline="Wanted", urgency=2, regions=["europe"], categories=["politics"]
    )
    ticker_server.post("en", headline="For every region", urgency=3)  # global
    expect(page.locator(ITEMS)).to_have_text(["Wanted", "For every region"])


def test_label_and_language_can_be_overridden(
    page: Page, embed: Embed, ticker_server: TickerProcess
) -> None:
    embed(ticker_server.url, channel="es", label="EN DIRECTO")
    expect(page.locator(f"{WIDGET} .label")).to_have_text("EN DIRECTO")
    expect(page.locator(f"{WIDGET} .bar")).to_have_attribute("lang", "es")
    page.evaluate(f"document.querySelector('{WIDGET}').removeAttribute('label')")
    expect(page.locator(f"{WIDGET} .label")).to_have_text("ÚLTIMA HORA")


@pytest.mark.parametrize("width", [320, 1280])
def test_demo_page_runs_under_its_csp(
    page: Page, watch: Watch, ticker_server: TickerProcess, width: int
) -> None:
    page.set_viewport_size({"width": width, "height": 720})
    ticker_server.post(
        "en", headline="Central bank holds rates at 4.25%", source="Reuters", urgency=4
    )
    ticker_server.post(
        "ar",
        headline="البنك المركزي يبقي أسعار الفائدة دون تغيير",
        source="وكالة الأنباء",
        urgency=4,
    )
    ticker_server.post(
        "es", headline="El banco central mantiene los tipos de interés", source="EFE", urgency=4
    )
    response = page.goto(f"{ticker_server.url}/")
    assert response is not None
    assert "'unsafe-inline'" not in response.headers["content-security-policy"]
    wait_live(page)
    for channel, headline, source, urgency in [
        ("en", "Magnitude 6.1 earthquake strikes off the coast of Chile", "AP", 1),
        ("ar", "زلزال بقوة 6.1 درجات قبالة سواحل تشيلي", "وكالة الأنباء", 1),
        ("es", "Un terremoto de magnitud 6,1 sacude la costa de Chile", "EFE", 1),
        ("en", "Rotterdam shooter arrested", "Dutch Police", 2),
        ("ar", "القبض على مطلق النار في روتردام", "الشرطة الهولندية", 2),
        ("es", "Detenido el autor del tiroteo de Róterdam", "Policía neerlandesa", 2),
    ]:
        ticker_server.post(
            channel, headline=headline, source=source, urgency=urgency, regions=["europe"]
        )
    expect(page.locator(f"{WIDGET} .item")).to_have_count(9)

    # The constructed stylesheet applies under style-src 'self' (no <style> needed).
    label_bg = page.evaluate(
        f"() => [...document.querySelectorAll('{WIDGET}')].map(t => "
        "getComputedStyle(t.shadowRoot.querySelector('.label')).backgroundColor)"
    )
    assert all(bg not in ("", "rgba(0, 0, 0, 0)") for bg in label_bg), label_bg
    assert page.evaluate("getComputedStyle(document.body).maxWidth") != "none"  # demo.css
    expect(page.locator("#snippet")).to_contain_text(f'src="{ticker_server.url}/widget.js"')
    expect(page.locator("#edition-ar breaking-ticker .bar")).to_have_attribute("dir", "rtl")

    page.wait_for_timeout(500)
    assert watch.csp_violations() == []
    assert watch.errors == []
    assert not page.evaluate("document.documentElement.scrollWidth > innerWidth"), (
        "the page must not scroll sideways"
    )
    # A still picture: each bar from its newest item (the reduced-motion layout).
    page.emulate_media(reduced_motion="reduce")
    page.wait_for_timeout(200)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"demo-{width}.png", full_page=True)
    if width == 1280:
        shutil.copyfile(ARTIFACTS / f"demo-{width}.png", ARTIFACTS / "demo.png")


def test_widget_is_served_for_other_origins(ticker_server: TickerProcess) -> None:
    r = httpx.get(f"{ticker_server.url}/widget.js", headers={"Origin": "https://news.example"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")
    assert r.headers["access-control-allow-origin"] == "*"
    assert "innerHTML" not in r.text and "insertAdjacentHTML" not in r.text
