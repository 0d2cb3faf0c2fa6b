"""The desk's helpers for its browser tests: signing in, finding a row, posting from the
form, and checking the page stayed clean (no console errors, CSP reports or dialogs)."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import ConsoleMessage, Locator, Page, expect

from tests.browser.conftest import Watch
from tests.helpers import TickerProcess, make_token
from ticker.settings import Settings

# The desk's tests run at a laptop's size: its lists and form side by side.
DESK_PAGE: dict[str, Any] = {"viewport": {"width": 1280, "height": 900}}


def desk_token(settings: Settings, name: str, role: str = "editor") -> str:
    return make_token(settings, name, ["*"], role)


def sign_in(page: Page, server: TickerProcess, token: str) -> None:
    """Sign in at /desk with ``token`` and wait until the desk is live."""
    page.goto(f"{server.url}/desk")
    page.get_by_label("Token", exact=True).fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#desk")).to_be_visible()
    expect(page.locator("#connection")).to_have_text("Live")


def sign_in_as(
    page: Page, server: TickerProcess, settings: Settings, name: str, role: str = "editor"
) -> None:
    """Sign in with a new every-channel token ``name`` of ``role``."""
    sign_in(page, server, desk_token(settings, name, role))


def row(page: Page, board_list: str, text: str) -> Locator:
    return page.locator(f"#{board_list} > li").filter(has_text=text)


def post_from_desk(page: Page, headline: str, **fields: str) -> None:
    form = page.locator("#post-form")
    form.get_by_label("Headline", exact=True).fill(headline)
    for label, value in fields.items():
        form.get_by_label(label, exact=True).fill(value)
    form.get_by_role("button", name="Post").click()
    expect(page.locator("#post-message")).to_contain_text("Posted")


def refused(message: ConsoleMessage, allowed: tuple[tuple[str, int], ...]) -> bool:
    """Chromium logs every refused fetch as a console error; these the test expects."""
    url = message.location.get("url", "")
    return message.text.startswith("Failed to load resource") and any(
        url.split("?")[0].endswith(path) and f"status of {status}" in message.text
        for path, status in allowed
    )


# Until the queue endpoint (issue #14) is in, the desk asks once and falls back.
NO_QUEUE = (("/queue", 404),)


def assert_clean(watch: Watch, *allowed: tuple[str, int]) -> None:
    errors = [
        f"{m.text} ({m.location.get('url')})"
        for m in watch.console
        if m.type == "error" and not refused(m, NO_QUEUE + allowed)
    ]
    assert errors == []
    assert watch.csp_violations() == []
    assert watch.errors == []
    assert watch.dialogs == []  # no window.alert/confirm: the desk's dialogs are in-page
