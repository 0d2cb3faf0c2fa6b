"""``ticker_http_requests_total{route,method,status}``: every request the app's router
answers, by route template (``/channels/{channel}/items``), never by path.

Deliberate choices:
- Labels stay bounded whatever clients send: the template the router matched (``-`` for
  a path no route serves), a method from ``METHODS`` (``other`` for any other), a status.
- Streams (``/channels/{channel}/events``) are served ahead of this (``app.Streams``) and
  are not counted here: ``ticker_readers`` and the events counters describe them.
- Series appear at their first request: routes by statuses are too many to make at 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

METHODS = frozenset({"GET", "HEAD", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"})
UNMATCHED = "-"


def templates(routes: Sequence[BaseRoute]) -> dict[int, str]:
    """The route template of each endpoint the router may put in ``scope["endpoint"]``."""
    out: dict[int, str] = {}
    for route in routes:
        if isinstance(route, Mount):
            out[id(route.app)] = route.path + "/{path}"
        elif isinstance(route, Route):
            out[id(route.endpoint)] = route.path
    return out


class CountRequests:
    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.templates = templates(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        def send_status(message: Message) -> Any:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            return send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            services = getattr(scope["app"].state, "services", None)
            if services is not None:
                endpoint = scope.get("endpoint")
                route = self.templates.get(id(endpoint), UNMATCHED) if endpoint else UNMATCHED
                method = scope["method"] if scope["method"] in METHODS else "other"
                services.hub.metrics.count_request(route, method, status)
