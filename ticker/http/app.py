"""The ASGI application: routes, lifespan and error mapping. No business logic here."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from ticker.domain.errors import RateLimited, TickerError
from ticker.fanout.feed import Feed
from ticker.fanout.hub import Hub
from ticker.http import events, ops, reads, writes
from ticker.http.counted import CountRequests
from ticker.http.deadline import HeadDeadlines
from ticker.http.door import DOOR, VERDICT, Door
from ticker.http.forwarded import forward
from ticker.http.handling import Services, cors_headers, services
from ticker.http.middleware import DESK_CSP, SecurityHeaders, SlashRedirects, with_security_headers
from ticker.http.openapi import openapi_route
from ticker.http.rules import (
    DeskStreamRequest,
    Head,
    Rules,
    StreamRequest,
    judge,
)
from ticker.http.shutdown import on_shutdown_signal
from ticker.http.streams import NativeStreams
from ticker.newsroom.archive import Archive
from ticker.newsroom.auth import Tokens
from ticker.newsroom.desk import Desk
from ticker.newsroom.reach import Reach
from ticker.newsroom.retention import Sweeper
from ticker.ops.fleet import Fleet
from ticker.ops.metrics import Metrics
from ticker.settings import Settings
from ticker.store import Store

log = logging.getLogger("ticker.app")

STATIC = Path(__file__).parent.parent / "static"


class Streams:
    """The app's door for ``/channels/{channel}/events``, ahead of Starlette's stack:
    it takes the verdict of the protocol that parsed the request (``door.VERDICT``), or
    judges the request itself under any other server (``rules.judge``), and answers it;
    everything that is not a stream request goes through the whole app. A token's stream
    (``DeskStreamRequest``) is always answered here, from every door: its token is
    checked in Redis before anything is sent (``events.desk_events``).

    Why ahead of the stack: a stream lives for hours, and each layer (error middleware,
    our middleware, exception middleware, router, route wrappers) keeps a coroutine frame
    and a ``send`` closure per connection, and runs for every send: a large part of a
    reader's memory (the figure, dated: docs/performance.md). The stream's own headers
    (``wire.py``) stand in for what ``SecurityHeaders`` would add; a refusal is answered
    by the app's own error handlers, so it looks like any other error.

    Being first, it is also where every request's client is set, behind a trusted
    proxy (``forwarded.forward``): under any server, with no layer of its own.
    """

    def __init__(self, app: Starlette, rules: Rules) -> None:
        self.app = app
        self.state = app.state
        self.rules = rules

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The client behind a trusted proxy, for every request and for everything that
        # reads the scope after this: routes, the reader cap, the access line.
        forward(scope, self.rules.proxies)
        extensions = scope.get("extensions") or {}
        if VERDICT in extensions:
            verdict = extensions[VERDICT]
        else:
            verdict = judge(Head.of_scope(scope), self.rules)
        if verdict is None:
            await self.app(scope, receive, send)
            return
        scope["app"] = self.app
        request = Request(scope, receive)
        try:
            if isinstance(verdict, DeskStreamRequest):
                response = await events.desk_events(request, verdict.stream)
            elif isinstance(verdict, StreamRequest):
                response = events.channel_events(request, verdict)
            else:
                raise verdict
        except TickerError as exc:
            response = await ticker_error(request, exc)
            send = with_security_headers(send)
        except Exception as exc:
            response = await server_error(request, exc)
            send = with_security_headers(send)
        await response(scope, receive, send)


async def ticker_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TickerError)
    headers = {}
    # The app's services, when the request came through it (a bare Request has none).
    services = getattr(getattr(request.scope.get("app"), "state", None), "services", None)
    if exc.status_code == 503:
        headers["Retry-After"] = "1"
        if services is not None:
            services.hub.metrics.redis_errors.inc()
    if services is not None:  # 401, 403 and 429, by channel (metrics.py)
        services.hub.metrics.count_refusal(exc.status_code, request.path_params.get("channel"))
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
    headers.update(cors_headers(request, services(request).settings))
    return FileResponse(
        STATIC / "widget.js", media_type="text/javascript; charset=utf-8", headers=headers
    )


def create_app(settings: Settings | None = None, *, metrics: Metrics | None = None) -> Streams:
    """The app; ``metrics`` when something else in the process counts too (the demo)."""
    settings = settings or Settings()
    if settings.redis_url is None:
        raise ValueError("create_app needs settings.redis_url (the CLI starts an embedded Redis)")
    redis_url = settings.redis_url.get_secret_value()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        store = Store(
            redis_url,
            prefix=settings.key_prefix,
            max_connections=settings.redis_max_connections,
            ack=settings.ack,
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
        app.state.services = Services(
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
        on_shutdown_signal(hub.begin_shutdown, drain=hub.begin_drain, drain_s=settings.drain_s)
        # Lifespan state reaches the server too: ticker's protocols judge requests by the
        # same rules, keep the head-read deadline and serve streams themselves.
        native = NativeStreams(feed, hub, settings) if settings.direct_writes else None
        deadlines = HeadDeadlines(settings.head_timeout_s)
        state: dict[str, Any] = {DOOR: Door(rules, deadlines, native)}
        try:
            yield state
        finally:
            deadlines.close()
            if native is not None:
                native.close()
            await sweeper.close()
            await hub.close()
            await reach.close()  # after the hub: the last batches' counts go out too
            await fleet.close()
            await store.close()
            counted.close()

    rules = Rules.of(settings)
    routes: list[Route | Mount] = [
        Route("/", index),
        Route("/widget.js", widget),
        Route("/desk", desk),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        Route("/livez", ops.livez),
        Route("/readyz", ops.readyz),
        Route("/metrics", ops.metrics),
        Route("/stats", ops.stats),
        Route("/whoami", reads.whoami),
        Route("/channels", reads.list_channels),
        Route("/channels/{channel}/items", reads.list_items, methods=["GET"]),
        Route("/channels/{channel}/items", writes.post_item, methods=["POST"]),
        Route("/channels/{channel}/queue", reads.queue, methods=["GET"]),
        Route("/channels/{channel}/audit", reads.audit, methods=["GET"]),
        Route("/channels/{channel}/items/{uri}", reads.get_item, methods=["GET"]),
        Route("/channels/{channel}/items/{uri}", writes.patch_item, methods=["PATCH"]),
        Route("/channels/{channel}/items/{uri}", writes.delete_item, methods=["DELETE"]),
        Route("/channels/{channel}/items/{uri}/purge", writes.purge_item, methods=["POST"]),
        Route("/channels/{channel}/items/{uri}/approve", writes.approve_item, methods=["POST"]),
        Route("/channels/{channel}/items/{uri}/reject", writes.reject_item, methods=["POST"]),
    ]
    routes.append(openapi_route(list(routes)))  # described from the routes themselves
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            TickerError: ticker_error,
            HTTPException: http_error,
            Exception: server_error,
        },
    )
    # Starlette's own trailing-slash redirect builds its Location from the Host header.
    app.router.redirect_slashes = False
    app.add_middleware(SlashRedirects, routes=routes)
    app.add_middleware(CountRequests, routes=routes)
    app.add_middleware(SecurityHeaders, max_header_bytes=settings.max_header_bytes)
    return Streams(app, rules)


def app_from_env() -> Streams:
    """Factory for ``uvicorn --factory`` (``ticker serve`` adds ``logs.RequestId``)."""
    return create_app(Settings())
