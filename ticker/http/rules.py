"""What a stream request is: one pure function, ``judge``, that every way in calls.

Three doors take requests: the front protocol (``front.py``, a new connection's first
request), uvicorn's protocol subclass (``protocol.py``, a keep-alive connection's later
requests) and the app's route (``app.Streams``, under any ASGI server). Each builds a
``Head`` from what it parsed and asks ``judge``; nothing else decides. A protocol that
does not serve a request itself hands its verdict on in the scope (``door.VERDICT``), so
no request is judged twice. Who the client is (for the per-address cap and the access
line) is the same kind of rule, ``forwarded.client_address``, which every door calls too.

The rules, in the order they are checked:

1. The path is ``/channels/{channel}/events`` (percent-decoded, one segment, as the
   app's routes match it); otherwise the request is not a stream request (``None``).
2. The head, counted by ``head_size``, fits ``TICKER_MAX_HEADER_BYTES`` (else 431).
3. The channel exists (else 404).
4. The method is GET (else 405: a HEAD stream would hold a reader slot for nothing).
5. There is no body, announced by ``Transfer-Encoding`` or a ``Content-Length`` other
   than 0 (else 400: an unread body hides the client's going away).
6. The query string is a valid filter, and ``reach`` is ``on`` or ``off`` (else 422,
   naming the parameter).
7. With an ``Authorization`` header (any value, an empty one too), it is the desk's
   stream (``DeskStreamRequest``): the token must be checked in Redis, so the app serves
   it, never a protocol, and a wrong token is refused (401, 403), never quietly served
   the public stream. It is never counted towards reach.

Duplicates: for a header, the first wins (as Starlette's ``Headers.get``); for a
single-valued query parameter, the first wins too; ``region`` and ``category`` take
every value given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, NamedTuple
from urllib.parse import unquote

import httptools
from starlette.datastructures import QueryParams

from ticker.domain.errors import InvalidRequest, TickerError, unknown_channel
from ticker.domain.events import EVERYTHING, Filter
from ticker.domain.models import SLUG, SLUG_MAX, URGENCY_MAX
from ticker.domain.proxies import NOBODY, Proxies
from ticker.ops.logs import sanitize_request_id
from ticker.settings import Settings

# A whole number from a query string or header: ASCII digits only (str.isdigit also takes
# "²" and "٣"), and few enough of them that int() is cheap and never refuses.
_DIGITS_MAX = 20
# Request heads are counted as bytes arrive too (``HeadCount``), before the parser
# buffers them; that guard is looser than the rule (it allows for the request line and
# for whitespace ``head_size`` does not count), so it only ever refuses padded heads.
RAW_SLACK = 1024


class Head(NamedTuple):
    """What a door parsed of a request head."""

    method: str
    path: str  # percent-decoded, as routes see it
    query: bytes  # the raw query string
    target_bytes: int  # the request target's length as sent
    headers: Sequence[tuple[bytes, bytes]]  # names in lower case, in order

    @classmethod
    def of_target(
        cls, method: bytes, target: bytes, headers: Sequence[tuple[bytes, bytes]]
    ) -> Head | None:
        """From a raw request line's method and target (a protocol's view); None for a
        target that is no URL (``*``, junk): never a stream request."""
        if target[:1] == b"/" and b"#" not in target:
            # Origin form, nearly every request: what ``parse_url`` would give, cheaper.
            path, _, query = target.partition(b"?")
            return cls(method.decode("latin-1"), _decoded(path), query, len(target), headers)
        try:
            url = httptools.parse_url(target)
        except httptools.HttpParserInvalidURLError:
            return None
        path, query = url.path or b"", url.query or b""
        return cls(method.decode("latin-1"), _decoded(path), query, len(target), headers)

    @classmethod
    def of_scope(cls, scope: Mapping[str, Any]) -> Head:
        """From an ASGI scope (the app's view, under any server)."""
        path = str(scope["path"])
        root = str(scope.get("root_path") or "")
        if root and path.startswith(root):
            path = path[len(root) :]
        raw = scope.get("raw_path")
        query = scope.get("query_string")
        query = query if isinstance(query, bytes) else b""
        size = len(raw) if isinstance(raw, bytes) else len(path.encode())
        headers = scope["headers"]
        assert isinstance(headers, list)
        return cls(
            str(scope["method"]), path, query, size + (len(query) + 1 if query else 0), headers
        )


def _decoded(raw: bytes) -> str:
    path = raw.decode("latin-1")
    return unquote(path) if "%" in path else path


def head_size(target_bytes: int, headers: Sequence[tuple[bytes, bytes]]) -> int:
    """A head's size as the limit counts it: the target, and each header line as
    ``name: value`` plus its line end. The same for every request and every door."""
    return target_bytes + 4 * len(headers) + sum(map(len, chain.from_iterable(headers)))


def head_part(buffer: bytes, start: int) -> int:
    """How many bytes of ``buffer`` are request head: up to and with the blank line that
    ends it, looked for from ``start`` on (the bytes before it are known not to end it)."""
    end = buffer.find(b"\r\n\r\n", max(0, start - 3))
    return len(buffer) if end < 0 else end + 4


class HeadCount:
    """Counts a request head's raw bytes as they arrive, before any parser buffers
    them (httptools joins a header's pieces by copying: quadratic in a huge header).
    Only the bytes up to the blank line that ends the head are counted; ``reset`` for
    the next request."""

    __slots__ = ("_limit", "_tail", "ended", "seen")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self.seen = 0
        self.ended = False
        self._tail = b""

    def add(self, data: bytes) -> bool:
        """Count ``data``; False once the head so far is over the limit."""
        if self.ended:
            return True
        tail = self._tail
        window = tail + data
        part = head_part(window, len(tail))
        self.seen += max(0, part - len(tail))
        self.ended = part < len(window) or window.endswith(b"\r\n\r\n")
        self._tail = window[-3:]
        return self.seen <= self._limit

    def reset(self) -> None:
        self.seen, self.ended, self._tail = 0, False, b""


@dataclass(frozen=True, slots=True)
class Rules:
    """The settings the rules read, taken once."""

    channels: frozenset[str]
    max_header_bytes: int
    proxies: Proxies = NOBODY  # whose X-Forwarded-For to believe (``forwarded.py``)

    @property
    def raw_head_limit(self) -> int:
        """The raw bytes a head may take before a protocol stops reading it."""
        return self.max_header_bytes + RAW_SLACK

    @classmethod
    def of(cls, settings: Settings) -> Rules:
        return cls(
            frozenset(c.name for c in settings.channels),
            settings.max_header_bytes,
            Proxies.parse(settings.forwarded_allow_ips),
        )


class StreamRequest(NamedTuple):
    """The stream a reader asked for (a tuple: one is made per connect)."""

    channel: str
    flt: Filter
    last_event_id: str | None
    origin: str | None
    request_id: str | None  # the caller's ``X-Request-ID``, if it is safe to echo
    counted: bool = True  # towards items' reach: ``reach=off`` (the desk's own views)


class DeskStreamRequest(NamedTuple):
    """A stream request with ``Authorization``: the desk's view of the stream (rule 7).
    Not a ``StreamRequest``, so no protocol serves it: it goes to the app with this
    verdict (``events.desk_events``), which checks the token before anything is sent."""

    stream: StreamRequest


# A stream request (anonymous, or the desk's), a refusal (status, code and message:
# ``TickerError.body()``), or None: not a stream request at all, for the other routes.
Verdict = StreamRequest | DeskStreamRequest | TickerError | None

_PREFIX, _SUFFIX = "/channels/", "/events"


def stream_channel(path: str) -> str | None:
    """The ``{channel}`` of ``/channels/{channel}/events``, as Starlette's route matches
    it (one non-empty segment), or None."""
    if not (path.startswith(_PREFIX) and path.endswith(_SUFFIX)):
        return None
    channel = path[len(_PREFIX) : -len(_SUFFIX)]
    return channel if channel and "/" not in channel else None


def judge(head: Head, rules: Rules) -> Verdict:
    """Whether ``head`` asks for a stream, and which; see the module docstring."""
    channel = stream_channel(head.path)
    if channel is None:
        return None
    last_id = origin = given_id = None
    body = desk = False
    for name, value in head.headers:
        if name == b"authorization":
            desk = True
        elif name == b"last-event-id":
            last_id = value if last_id is None else last_id
        elif name == b"origin":
            origin = value if origin is None else origin
        elif name == b"x-request-id":
            given_id = value if given_id is None else given_id
        elif name == b"transfer-encoding" or (
            name == b"content-length" and value.lstrip(b"0") != b""
        ):
            body = True
    if head_size(head.target_bytes, head.headers) > rules.max_header_bytes:
        return headers_too_large(rules.max_header_bytes)
    if channel not in rules.channels:
        return unknown_channel(channel)
    if head.method != "GET":
        return InvalidRequest("streams answer GET only", status_code=405, code="method_not_allowed")
    if body:
        # Nobody reads a stream request's body, and an unread body stops the server from
        # noticing that the client went away.
        return InvalidRequest("a stream request has no body", status_code=400, code="bad_body")
    last_event_id = last_id.decode("latin-1") if last_id else None
    flt, counted = EVERYTHING, True
    if head.query:
        try:
            params = QueryParams(head.query)
            flt = stream_filter(params)
            counted = reach_counted(params)
        except TickerError as exc:
            return exc
        if not last_event_id:
            last_event_id = first(params, "last_event_id") or None
    wanted = StreamRequest(
        channel,
        flt,
        last_event_id,
        origin.decode("latin-1") if origin is not None else None,
        sanitize_request_id(given_id),
        counted and not desk,
    )
    return DeskStreamRequest(wanted) if desk else wanted


def headers_too_large(limit: int) -> InvalidRequest:
    return InvalidRequest(
        f"request headers are larger than {limit} bytes",
        status_code=431,
        code="headers_too_large",
    )


def first(params: QueryParams, name: str) -> str | None:
    """A single-valued parameter: the first one given wins (as for headers)."""
    values = params.getlist(name)
    return values[0] if values else None


def whole_number(raw: str, field: str, low: int, high: int) -> int:
    """``raw`` as a number from ``low`` to ``high``, or a 422 naming ``field``."""
    if not (0 < len(raw) <= _DIGITS_MAX and raw.isascii() and raw.isdigit()) or not (
        low <= int(raw) <= high
    ):
        message = f"must be a whole number from {low} to {high}"
        raise InvalidRequest(f"{field}: {message}", details=[{"field": field, "message": message}])
    return int(raw)


def stream_filter(query: QueryParams) -> Filter:
    """A stream's filter from its query string, or a 422 naming the parameter."""

    def slugs(name: str) -> frozenset[str]:
        values = [v for raw in query.getlist(name) for v in raw.split(",") if v]
        bad = [v for v in values if len(v) > SLUG_MAX or not SLUG.fullmatch(v)]
        if bad:
            raise InvalidRequest(
                f"{name}: {bad[0][:40]!r} is not a slug",
                details=[{"field": name, "message": "not a slug"}],
            )
        return frozenset(values)

    raw = first(query, "max_urgency")
    urgency = whole_number(str(URGENCY_MAX) if raw is None else raw, "max_urgency", 1, URGENCY_MAX)
    return Filter(slugs("region"), slugs("category"), urgency)


def reach_counted(query: QueryParams) -> bool:
    """``reach=off``: this reader is not counted in items' reach (the desk's own stream
    and preview); ``on``, or absent, it is. Anything else is a 422."""
    raw = first(query, "reach")
    if raw is None or raw == "on":
        return True
    if raw == "off":
        return False
    message = "must be on or off"
    raise InvalidRequest(f"reach: {message}", details=[{"field": "reach", "message": message}])


def cors_for(origin: str | None, cors_origins: Sequence[str]) -> dict[str, str]:
    """CORS for the public read-only endpoints (the write API never gets any), for a
    request's first ``Origin`` header."""
    if "*" in cors_origins:
        return {"Access-Control-Allow-Origin": "*"}
    if origin and origin in cors_origins:
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
    return {"Vary": "Origin"}
