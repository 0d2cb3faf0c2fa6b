"""What ``protocol.HttpProtocol`` changes in a uvicorn request's ``RequestResponseCycle``:
uvicorn bugs worked around (docs/uvicorn-notes.md), once per request, never per event.

- ``closing``: a response after which the connection closes says so (uvicorn 0.34 closed
  without the header).
- ``close_delimited``: an HTTP/1.0 response with neither length nor encoding gets a body
  that ends with the connection, not chunks HTTP/1.0 clients do not know (section 2).
- ``upgrade_started``, ``upgrade_body``: an ``Upgrade`` request uvicorn does not take
  still gets its body. httptools ends the message at the head and hands the body over as
  the new protocol's bytes, so the app saw an empty body (section 6).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

# Larger than any body we could send: an HTTP/1.0 stream's length is "until close".
_UNBOUNDED = 1 << 62


def closing(cycle: RequestResponseCycle) -> None:
    """The connection closes after this response, and the response says so (uvicorn
    0.34 closes without the header; later versions add it)."""
    if not cycle.keep_alive:
        return  # already closing: said by the request, or by an earlier call
    cycle.keep_alive = False
    if cycle.response_started:
        return
    send = cycle.send

    async def send_closing(message: Any) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            if not any(name.lower() == b"connection" for name, _ in headers):
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
        await send(message)

    cycle.send = send_closing  # type: ignore[method-assign]


def close_delimited(cycle: RequestResponseCycle) -> None:
    """uvicorn's httptools cycle answers HTTP/1.0 with ``Transfer-Encoding: chunked``,
    which HTTP/1.0 clients do not know. A response with neither length nor encoding gets
    a body that ends when the connection closes (RFC 9112 section 6.3) instead."""
    send = cycle.send

    async def send_close_delimited(message: Any) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            names = {name.lower() for name, _ in headers}
            if not names & {b"content-length", b"transfer-encoding"}:
                cycle.chunked_encoding = False
                cycle.expected_content_length = _UNBOUNDED
                if b"connection" not in names:
                    # The body ends with the connection (uvicorn 0.34 would keep it open).
                    message = {**message, "headers": [*headers, (b"connection", b"close")]}
        elif (
            message["type"] == "http.response.body"
            and not message.get("more_body", False)
            and cycle.expected_content_length >= _UNBOUNDED // 2
        ):
            cycle.expected_content_length = len(message.get("body", b""))
        await send(message)

    cycle.send = send_close_delimited  # type: ignore[method-assign]


def upgrade_started(
    cycle: RequestResponseCycle,
    headers: Sequence[tuple[bytes, bytes]],
    data: bytes,
    exc: BaseException | None,
) -> int:
    """An upgrade not taken: its body's bytes in ``data`` (the read being parsed, where
    ``exc``, the parser's ``HttpParserUpgrade``, says the head ends) go to the app. The
    body bytes still owed, to come in later reads (``upgrade_body``)."""
    length = _content_length(headers)
    if not length:
        return 0
    at = exc.args[0] if isinstance(exc, httptools.HttpParserUpgrade) and exc.args else 0
    cycle.more_body = True
    return upgrade_body(cycle, data[at:] if isinstance(at, int) else b"", length)


def upgrade_body(cycle: RequestResponseCycle, data: bytes, owed: int) -> int:
    """Up to ``owed`` bytes of ``data`` to the app as the request's body; what is still
    owed after them."""
    piece = data[:owed]
    owed -= len(piece)
    cycle.body += piece
    if not owed:
        cycle.more_body = False
    if piece or not owed:
        cycle.message_event.set()
    return owed


def _content_length(headers: Sequence[tuple[bytes, bytes]]) -> int:
    """The first Content-Length header as a number (0 when absent or not a number)."""
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() and len(value) <= 18 else 0
    return 0
