"""Browser fixtures: one Chromium per session, a fresh context per test, and a news site of
another origin that embeds the widget the documented way."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, sync_playwright

# `playwright install` cannot download browsers here; use the system Chromium.
CHROMIUM = os.environ.get("TICKER_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (set TICKER_CHROMIUM)")
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Watch:
    """What the page said: console messages, uncaught errors, dialogs (none expected, and
    dismissed unless a test sets ``accept_dialogs``)."""

    console: list[ConsoleMessage] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    accept_dialogs: bool = False

    def csp_violations(self) -> list[str]:
        return [m.text for m in self.console if "Content Security Policy" in m.text]


@pytest.fixture
def page_options() -> dict[str, Any]:
    """Override in a test module for other context options (viewport, reduced motion)."""
    return {}


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
def page(browser: Browser, watch: Watch, page_options: dict[str, Any]) -> Iterator[Page]:
    context = browser.new_context(**{"viewport": {"width": 1024, "height": 600}, **page_options})
    context.set_default_timeout(10_000)
    opened = context.new_page()
    opened.on("console", lambda message: watch.console.append(message))
    opened.on("pageerror", lambda exc: watch.errors.append(str(exc)))

    def on_dialog(dialog: Dialog) -> None:
        watch.dialogs.append(dialog.message)
        if watch.accept_dialogs:
            dialog.accept()
        else:
            dialog.dismiss()

    opened.on("dialog", on_dialog)
    try:
        yield opened
    finally:
        context.close()


class NewsSite:
    """A page on another origin (another loopback port) embedding the widget.

    A real server rather than ``page.route``: Chromium treats a routed page as public and
    then refuses its requests to a loopback service (Local Network Access).
    """

    def __init__(self) -> None:
        self.html = b""
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(site.html)))
                self.end_headers()
                self.wfile.write(site.html)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture(scope="session")
def news_site() -> Iterator[NewsSite]:
    site = NewsSite()
    try:
        yield site
    finally:
        site.close()


@pytest.fixture
def embed(page: Page, news_site: NewsSite) -> Callable[..., None]:
    """Open the news site with ``<breaking-ticker src=... {attributes}>`` and wait until live."""

    def open_site(service: str, **attributes: str) -> None:
        attrs = {"src": service, "channel": "en", **attributes}
        rendered = " ".join(
            f'{name.replace("_", "-")}="{escape(value)}"' for name, value in attrs.items()
        )
        news_site.html = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A news site</title>
<script type="module" src="{escape(service)}/widget.js"></script></head>
<body><h1>A news site</h1><breaking-ticker {rendered}></breaking-ticker>
<p><a href="#after" id="after">After the ticker</a></p></body></html>""".encode()
        page.goto(f"{news_site.url}/")
        wait_live(page)

    return open_site


def wait_live(page: Page, selector: str = "breaking-ticker") -> None:
    """Until the widget is connected and has taken in what was on the ticker."""
    page.wait_for_function(
        "s => [...document.querySelectorAll(s)].every(t => t.matches(':state(live)'))",
        arg=selector,
    )
