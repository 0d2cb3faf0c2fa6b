"""The ASGI application: routes, lifespan and error mapping. No business logic here."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Match, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ticker import api, protocol
from ticker.archive import Archive
from ticker.auth import Tokens
from ticker.desk import Desk
from ticker.errors import RateLimited, TickerError
from ticker.feed import Feed
from ticker.fleet import Fleet
from ticker.hub import Hub
from ticker.metrics import Metrics
from ticker.native import NativeStreams
from ticker.reach import Reach
from ticker.retention import Sweeper
from ticker.settings import Settings
from ticker.store import Store

log = logging.getLogger("ticker.app")

STATIC = Path(__file__).parent / "static"

# Our own pages run no inline script or style (the widget uses constructed stylesheets).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'self'"
)

# The desk acts with an editor's token: no other page may frame it (clickjacking), and
# forms only ever submit here.
DESK_CSP = CSP.replace("frame-ancestors 'self'", "frame-ancestors 'none'") + "; form-action 'self'"


_SECURITY_HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
)


def header_bytes(scope: Scope) -> int:
    """What the 431 limit counts: header names and values, and the raw path."""
    return sum(len(k) + len(v) for k, v in scope["headers"]) + len(scope["raw_path"] or b"")


def with_security_headers(send: Send) -> Send:
    """``send``, adding CSP, nosniff and the referrer policy where a response lacks them."""

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            present = {name.lower() for name, _ in headers}
            for name, value in _SECURITY_HEADERS:
                if name not in present:
                    headers.append((name, value))
            message = {**message, "headers": headers}
        await send(message)

    return send_with_headers


class SecurityHeaders:
    """Refuses oversized request headers (431) and adds CSP and nosniff to every response
    (cheap: once per request, not per event). Under ``ticker serve`` the protocol refuses
    a huge head before it is buffered (protocol.py); this check is the backstop for any
    other server."""

    def __init__(self, app: ASGIApp, max_header_bytes: int = 16384) -> None:
        self.app = app
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if header_bytes(scope) > self.max_header_bytes:
            body = {
                "error": "headers_too_large",
                "message": f"request headers are larger than {self.max_header_bytes} bytes",
            }
            await JSONResponse(body, status_code=431)(scope, receive, send)
            return

        await self.app(scope, receive, with_security_headers(send))


class Streams:
    """Serves ``GET /channels/{channel}/events`` ahead of Starlette's stack (the same
    ``Route`` object the app routes with); everything else goes through the whole app.

    Why: a stream lives for hours, and each layer of the stack (error middleware, our
    middleware, exception middleware, router, route wrappers) keeps a coroutine frame and
    a ``send`` closure per connection, and runs for every send: about a third of a
    reader's memory (docs/performance.md). The stream's own headers (``eventstream``)
    stand in for what ``SecurityHeaders`` would add; a refused stream request is answered
    here by the app's own error handlers, so it looks like any other error.
    """

    def __init__(self, app: Starlette, route: Route, max_header_bytes: int) -> None:
        self.app = app
        self.state = app.state
        self.route = route
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            match, child = self.route.matches(scope)
            if match is Match.FULL and header_bytes(scope) <= self.max_header_bytes:
                scope.update(child)
                scope["app"] = self.app
                request = Request(scope, receive)
                try:
                    response = await api.channel_events(request)
                except TickerError as exc:
                    response = await ticker_error(request, exc)
                    send = with_security_headers(send)
                except Exception as exc:
                    response = await server_error(request, exc)
                    send = with_security_headers(send)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def ticker_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TickerError)
    headers = {}
    if exc.status_code == 503:
        headers["Retry-After"] = "1"
        services = getattr(request.app.state, "services", None)
        if services is not None:
            services.hub.metrics.redis_errors.inc()
    if exc.code == "conflict":
        headers["Retry-After"] = "1"  # a concurrent change won: try again
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after_s)
    if exc.status_code == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="ticker"'
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=headers)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse(
        {"error": code, "message": exc.detail}, status_code=exc.status_code, headers=exc.headers
    )


async def server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(
        {"error": "internal_error", "message": "internal server error"}, status_code=500
    )


async def index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")


async def desk(request: Request) -> Response:
    headers = {"Content-Security-Policy": DESK_CSP, "Cache-Control": "no-store"}
    return FileResponse(
        STATIC / "desk.html", media_type="text/html; charset=utf-8", headers=headers
    )


async def widget(request: Request) -> Response:
    headers = {"Cache-Control": "public, max-age=300"}
    headers.update(api.cors_headers(request, api.services(request).settings))
    return FileResponse(
        STATIC / "widget.js", media_type="text/javascript; charset=utf-8", headers=headers
    )


def _on_shutdown_signal(callback: Callable[[], None]) -> None:
    """Run ``callback`` on SIGTERM/SIGINT, then the server's own handler.

    uvicorn waits for open responses before it shuts the app down; endless streams must
    end first. Chaining the handler (instead of patching uvicorn) keeps that explicit.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(signum)

        def handler(num: int, frame: FrameType | None, previous: Any = previous) -> None:
            loop.call_soon_threadsafe(callback, context=contextvars.Context())
            if callable(previous):
                previous(num, frame)

        signal.signal(signum, handler)


def create_app(settings: Settings | None = None, *, metrics: Metrics | None = None) -> Streams:
    """The app; ``metrics`` when something else in the process counts too (the demo)."""
    settings = settings or Settings()
    if settings.redis_url is None:
        raise ValueError("create_app needs settings.redis_url (the CLI starts an embedded Redis)")
    redis_url = settings.redis_url.get_secret_value()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        store = Store(
            redis_url, prefix=settings.key_prefix, max_connections=settings.redis_max_connections
        )
        counted = metrics or Metrics(
            [c.name for c in settings.channels], multiprocess_dir=settings.metrics_dir
        )
        counted.forget_dead_workers()
        archive = Archive(store, settings)
        desk = Desk(store, settings, counted, archive)
        reach = Reach(store)
        hub = Hub(store, settings, counted, archive.current, reach)
        fleet = Fleet(
            store,
            settings,
            lambda: {c.name: hub.subscriber_count(c.name) for c in settings.channels},
        )
        sweeper = Sweeper(store, desk, settings)
        feed = Feed(hub, archive, settings)
        app.state.services = api.Services(
            settings=settings,
            store=store,
            desk=desk,
            archive=archive,
            tokens=Tokens(
                store, rate_per_minute=settings.write_rate_per_minute, burst=settings.write_burst
            ),
            hub=hub,
            feed=feed,
            sweeper=sweeper,
            fleet=fleet,
        )
        sweeper.start()
        fleet.start()
        reach.start()
        _on_shutdown_signal(hub.begin_shutdown)
        # Lifespan state reaches the server too: ticker's protocol counts request heads
        # against this limit before buffering them, and serves streams itself (native.py).
        state: dict[str, Any] = {protocol.MAX_HEADER_BYTES: settings.max_header_bytes}
        native = NativeStreams(feed, hub, settings) if settings.direct_writes else None
        if native is not None:
            state[protocol.STREAMS] = native
        try:
            yield state
        finally:
            if native is not None:
                native.close()
            await sweeper.close()
            await hub.close()
            await reach.close()  # after the hub: the last batches' counts go out too
            await fleet.close()
            await store.close()
            counted.close()

    events = Route("/channels/{channel}/events", api.channel_events, methods=["GET"])
    routes = [
        Route("/", index),
        Route("/widget.js", widget),
        Route("/desk", desk),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        Route("/livez", api.livez),
        Route("/readyz", api.readyz),
        Route("/metrics", api.metrics),
        Route("/stats", api.stats),
        Route("/whoami", api.whoami),
        Route("/channels", api.list_channels),
        Route("/channels/{channel}/items", api.list_items, methods=["GET"]),
        Route("/channels/{channel}/items", api.post_item, methods=["POST"]),
        Route("/channels/{channel}/queue", api.queue, methods=["GET"]),
        Route("/channels/{channel}/items/{uri}", api.get_item, methods=["GET"]),
        Route("/channels/{channel}/items/{uri}", api.patch_item, methods=["PATCH"]),
        Route("/channels/{channel}/items/{uri}", api.delete_item, methods=["DELETE"]),
        Route("/channels/{channel}/items/{uri}/purge", api.purge_item, methods=["POST"]),
        events,
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            TickerError: ticker_error,
            HTTPException: http_error,
            Exception: server_error,
        },
    )
    app.add_middleware(SecurityHeaders, max_header_bytes=settings.max_header_bytes)
    return Streams(app, events, settings.max_header_bytes)


def app_from_env() -> Streams:
    """Factory for ``uvicorn --factory`` (``ticker serve`` adds ``logs.RequestId``)."""
    return create_app(Settings())
