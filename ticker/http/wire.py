"""The bytes ticker's protocols write on the wire themselves: status lines, a stream's
response head, and JSON error responses. The app's responses (Starlette's) say the same:
``STREAM_HEADERS`` and ``json_body`` are theirs too, so a stream or an error looks alike
whichever door answered it (tests/test_front_differential.py checks).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

# What every stream response says besides its request ID and CORS.
STREAM_HEADERS = {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-store",
    # nginx and similar proxies must not buffer an endless response.
    "x-accel-buffering": "no",
    # Streams are served ahead of the app's middleware: its one header that matters here.
    "x-content-type-options": "nosniff",
}

_STATUS_LINES = {
    int(status): b"HTTP/1.1 %d %s\r\n" % (status, status.phrase.encode("ascii"))
    for status in HTTPStatus
}


def status_line(status: int) -> bytes:
    """``HTTP/1.1 404 Not Found\\r\\n``; a status without a name keeps the number only."""
    return _STATUS_LINES.get(status) or b"HTTP/1.1 %d \r\n" % status


def json_body(content: Any) -> bytes:
    """JSON as Starlette's ``JSONResponse`` renders it (compact, UTF-8)."""
    return json.dumps(
        content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")


def header_lines(headers: Mapping[str, str] | Iterable[tuple[bytes, bytes]]) -> bytes:
    """``name: value\\r\\n`` for each header (names in lower case, as the app's)."""
    if isinstance(headers, Mapping):
        return "".join(f"{k.lower()}: {v}\r\n" for k, v in headers.items()).encode("latin-1")
    return b"".join(b"%s: %s\r\n" % pair for pair in headers)


STREAM_LINES = header_lines(STREAM_HEADERS)


def stream_head(lines: bytes) -> bytes:
    """A native stream's response head: its body ends with the connection (RFC 9112
    section 6.3), as nchan's streams do, so there is no chunk framing to write."""
    return b"HTTP/1.1 200 OK\r\n%sconnection: close\r\n\r\n" % lines


def error_response(status: int, body: Mapping[str, Any], lines: bytes = b"") -> bytes:
    """A JSON error response that closes the connection; ``lines`` are header lines
    (``header_lines``) to send besides the content headers."""
    data = json_body(body)
    return (
        b"%s%scontent-type: application/json\r\nx-content-type-options: nosniff\r\n"
        b"connection: close\r\ncontent-length: %d\r\n\r\n%s"
        % (
            status_line(status),
            lines,
            len(data),
            data,
        )
    )
