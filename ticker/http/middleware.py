"""The app's middleware: security headers on every response (CSP, nosniff, referrer
policy) with the request-head size guard, and relative trailing-slash redirects."""

from __future__ import annotations

from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ticker.http.rules import Head, head_size, headers_too_large, stream_channel

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
    """Refuses oversized request heads (431, counted as for streams: ``rules.head_size``)
    and adds CSP and nosniff to every response (cheap: once per request, not per event).
    Under ``ticker serve`` the protocol also refuses a huge head before it is buffered
    (``protocol.py``)."""

    def __init__(self, app: ASGIApp, max_header_bytes: int = 16384) -> None:
        self.app = app
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = with_security_headers(send)
        head = Head.of_scope(scope)
        if head_size(head.target_bytes, head.headers) > self.max_header_bytes:
            refusal = headers_too_large(self.max_header_bytes)
            await JSONResponse(refusal.body(), status_code=431)(scope, receive, send)
            return
        await self.app(scope, receive, send)


class SlashRedirects:
    """``/desk/`` to ``/desk``: a relative ``Location``, never one built from the
    ``Host`` header (a client, or a cache in between, could be sent anywhere). Only to a
    path that a route serves, and never to one that a browser would read as another
    host (``//host``, ``/\\host``)."""

    def __init__(self, app: ASGIApp, routes: list[Route | Mount]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if len(path) > 1 and path.endswith("/"):
            bare = path.rstrip("/")
            if (
                bare
                and not bare.startswith("//")
                and "\\" not in bare
                and self._served(scope, bare)
            ):
                raw = scope.get("raw_path") or path.encode()
                location = raw.decode("latin-1").rstrip("/")
                query = scope.get("query_string", b"")
                if query:
                    location += "?" + query.decode("latin-1")
                headers = {"Location": location, "Cache-Control": "no-store"}
                await Response(status_code=307, headers=headers)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _served(self, scope: Scope, path: str) -> bool:
        if stream_channel(path) is not None:
            return True  # the stream route is served ahead of the router (``Streams``)
        probe = {**scope, "path": path, "root_path": ""}
        return any(route.matches(probe)[0] is not Match.NONE for route in self.routes)
