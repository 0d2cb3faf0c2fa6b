"""ticker's front protocol (``ticker.http.front.Front``) in-process, byte by byte, as
uvicorn tests its own protocols: a corpus of request bytes, each with the answer a client
must get, fed whole, split in two at every offset, and one byte at a time; after each,
the connection is lost and no reader slot, head deadline, connection or ASGI task may be
left behind. Then what the fan-out does with a socket whose writes fail, and what a
connection handed to uvicorn's protocol leaves to it.

The app is the real one (``create_app``) inside its lifespan, on the real Redis; the
transport is a mock (``tests/front_harness.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.front_harness import Conn, Harness, MockTransport, Reply, running, until
from ticker.http.front import Front
from ticker.http.protocol import HttpProtocol
from ticker.http.stream import Stream
from ticker.settings import Settings

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

MAX_HEAD = 4096  # TICKER_MAX_HEADER_BYTES here: a small head goes over it (and the raw guard)
RAW_GUARD = MAX_HEAD + 1024  # rules.RAW_SLACK: what a protocol reads before the blank line
ORIGIN = "https://a.example"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"cors_origins": (ORIGIN,), "max_header_bytes": MAX_HEAD}


@pytest.fixture
async def harness(settings: Settings) -> AsyncIterator[Harness]:
    async with running(settings) as h:
        yield h


# -- the corpus ------------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """What the client must read: the status line, header values (None: absent), and
    whether the connection is closed after the answer (None: either)."""

    status: str
    headers: Mapping[str, str | None]
    stream: bool = False  # the body starts with ``retry:``
    closes: bool | None = None
    body_has: tuple[bytes, ...] = ()
    body_lacks: tuple[bytes, ...] = ()
    head_only: bool = False  # a HEAD request's answer: no body


@dataclass(frozen=True)
class Case:
    name: str
    request: bytes
    expect: Expect
    # Offsets worth a split besides the first ~200 bytes and the head end, for long ones.
    also_split_at: tuple[int, ...] = field(default=())


def stream(origin: str | None = None, **extra: Any) -> Expect:
    """A stream served as HTTP/1.1 (natively, or close-delimited by the app)."""
    headers = {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-store",
        "connection": "close",
        "transfer-encoding": None,
        "content-length": None,
        "retry-after": None,
        "access-control-allow-origin": origin,
        "vary": "Origin",
    }
    return Expect("HTTP/1.1 200 OK", headers, stream=True, closes=False, **extra)


def refusal(
    status: str, code: bytes, *, more: tuple[bytes, ...] = (), head_only: bool = False
) -> Expect:
    """A stream request refused by the app (the verdict handed to uvicorn's protocol):
    JSON, on a connection that stays open."""
    headers = {
        "content-type": "application/json",
        "cache-control": None,
        "connection": None,
        "retry-after": None,
        "access-control-allow-origin": None,
        "transfer-encoding": None,
    }
    body = () if head_only else (b'"error":"%s"' % code, *more)
    return Expect(status, headers, closes=False, body_has=body, head_only=head_only)


def app_json(body: bytes, *, closes: bool) -> Expect:
    """A 200 JSON answer from the app's other routes."""
    headers = {
        "content-type": "application/json",
        "connection": "close" if closes else None,
        "retry-after": None,
    }
    return Expect("HTTP/1.1 200 OK", headers, closes=closes, body_has=(body,))


# What uvicorn's protocol answers a request its parser refuses (and then closes).
BAD_REQUEST = Expect(
    "HTTP/1.1 400 Bad Request",
    {"content-type": "text/plain; charset=utf-8", "connection": "close"},
    closes=True,
    body_has=(b"Invalid HTTP request received.",),
)

HOST = b"Host: x\r\n"
STREAM_LINE = b"GET /channels/en/events HTTP/1.1\r\n"
LIVEZ_LINE = b"GET /livez HTTP/1.1\r\n"
GOOD_STREAM = STREAM_LINE + HOST + b"\r\n"
H2C = (
    b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
    b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
)
WEBSOCKET = (
    b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
# Request smuggling shapes: each must be refused by the parser, whatever the path.
SMUGGLING = {
    "content_length_and_transfer_encoding": (
        HOST + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "two_content_lengths": HOST + b"Content-Length: 0\r\nContent-Length: 5\r\n\r\n",
    "obs_fold_continuation": HOST + b"X-A: b\r\n c\r\n\r\n",
    "nul_in_a_header": HOST + b"X-A: b\x00c\r\n\r\n",
}
ONE_BIG_HEADER = HOST + b"X-Big: " + b"a" * (MAX_HEAD + 100) + b"\r\n\r\n"
TOO_LARGE = b'"message":"request headers are larger than %d bytes"' % MAX_HEAD

CORPUS = [
    Case(
        "a_filtered_stream_with_an_origin",
        b"GET /channels/en/events?region=eu&category=politics HTTP/1.1\r\n"
        + HOST
        + b"Origin: https://a.example\r\n\r\n",
        stream(ORIGIN),
    ),
    Case("a_stream_without_an_origin", GOOD_STREAM, stream()),
    Case(
        "a_stream_followed_by_pipelined_junk",
        GOOD_STREAM + b"XYZ\x01 / HTTP/1.1\r\n\r\n",
        stream(),
    ),
    Case(
        "a_stream_followed_by_a_pipelined_request",
        GOOD_STREAM + LIVEZ_LINE + HOST + b"\r\n",
        stream(body_lacks=(b'{"status":"ok"}',)),
    ),
    *(
        Case(f"{name}_on_the_stream_path", STREAM_LINE + rest, BAD_REQUEST)
        for name, rest in SMUGGLING.items()
    ),
    *(Case(f"{name}_on_livez", LIVEZ_LINE + rest, BAD_REQUEST) for name, rest in SMUGGLING.items()),
    Case(
        "bare_lf_line_ends_on_the_stream_path",
        b"GET /channels/en/events HTTP/1.1\nHost: x\n\n",
        BAD_REQUEST,
    ),
    Case("bare_lf_line_ends_on_livez", b"GET /livez HTTP/1.1\nHost: x\n\n", BAD_REQUEST),
    Case("an_h2c_upgrade_on_the_stream_path", STREAM_LINE + HOST + H2C, stream()),
    Case(
        "an_h2c_upgrade_on_livez",
        LIVEZ_LINE + HOST + H2C,
        app_json(b'{"status":"ok"}', closes=True),
    ),
    Case(
        "an_h2c_upgrade_on_the_items",
        b"GET /channels/en/items HTTP/1.1\r\n" + HOST + H2C,
        app_json(b'"items":[]', closes=True),
    ),
    Case("a_websocket_upgrade_on_the_stream_path", STREAM_LINE + HOST + WEBSOCKET, stream()),
    Case(
        "a_websocket_upgrade_on_livez",
        LIVEZ_LINE + HOST + WEBSOCKET,
        app_json(b'{"status":"ok"}', closes=True),
    ),
    Case("an_http_1_0_stream", b"GET /channels/en/events HTTP/1.0\r\nHost: x\r\n\r\n", stream()),
    Case("an_http_0_9_request_line", b"GET /channels/en/events\r\n\r\n", BAD_REQUEST),
    Case(
        "an_absolute_form_target",
        b"GET http://x/channels/en/events HTTP/1.1\r\n" + HOST + b"\r\n",
        stream(),
    ),
    Case(
        "two_origins_the_first_allowed",
        STREAM_LINE + HOST + b"Origin: https://a.example\r\nOrigin: https://b.example\r\n\r\n",
        stream(ORIGIN),
    ),
    Case(
        "two_origins_the_first_not_allowed",
        STREAM_LINE + HOST + b"Origin: https://b.example\r\nOrigin: https://a.example\r\n\r\n",
        stream(None),
    ),
    Case(
        # An ID too old to resume from: the first header wins, so the reader is reset.
        "two_last_event_ids_the_first_old",
        STREAM_LINE + HOST + b"Last-Event-ID: 1-0\r\nLast-Event-ID: \r\n\r\n",
        stream(body_has=(b"event: reset\n",)),
    ),
    Case(
        "two_last_event_ids_the_first_empty",
        STREAM_LINE + HOST + b"Last-Event-ID: \r\nLast-Event-ID: 1-0\r\n\r\n",
        stream(body_lacks=(b"event: reset",)),
    ),
    Case(
        "one_header_over_the_limit_on_the_stream_path",
        STREAM_LINE + ONE_BIG_HEADER,
        refusal(
            "HTTP/1.1 431 Request Header Fields Too Large", b"headers_too_large", more=(TOO_LARGE,)
        ),
    ),
    Case(
        "one_header_over_the_limit_on_livez",
        LIVEZ_LINE + ONE_BIG_HEADER,
        refusal(
            "HTTP/1.1 431 Request Header Fields Too Large", b"headers_too_large", more=(TOO_LARGE,)
        ),
    ),
    Case(
        # Refused by the protocol as the bytes arrive (the raw guard), before any parse
        # is complete: the same JSON as the app's 431, and the connection closed.
        "two_thousand_small_headers",
        STREAM_LINE + HOST + b"X-a: b\r\n" * 2000 + b"\r\n",
        Expect(
            "HTTP/1.1 431 Request Header Fields Too Large",
            {"content-type": "application/json", "connection": "close"},
            closes=True,
            body_has=(b'{"error":"headers_too_large",' + TOO_LARGE + b"}",),
        ),
        also_split_at=tuple(range(RAW_GUARD - 40, RAW_GUARD + 80)),
    ),
    Case(
        "head",
        b"HEAD /channels/en/events HTTP/1.1\r\n" + HOST + b"\r\n",
        refusal("HTTP/1.1 405 Method Not Allowed", b"method_not_allowed", head_only=True),
    ),
    Case(
        "post",
        b"POST /channels/en/events HTTP/1.1\r\n" + HOST + b"Content-Length: 0\r\n\r\n",
        refusal("HTTP/1.1 405 Method Not Allowed", b"method_not_allowed"),
    ),
    Case(
        "a_body",
        STREAM_LINE + HOST + b"Content-Length: 3\r\n\r\nabc",
        refusal("HTTP/1.1 400 Bad Request", b"bad_body"),
    ),
    Case(
        "a_chunked_body",
        STREAM_LINE + HOST + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        refusal("HTTP/1.1 400 Bad Request", b"bad_body"),
    ),
    Case(
        "an_unknown_channel",
        b"GET /channels/zz/events HTTP/1.1\r\n" + HOST + b"\r\n",
        refusal("HTTP/1.1 404 Not Found", b"not_found"),
    ),
    Case(
        "a_bad_filter",
        b"GET /channels/en/events?region=EU! HTTP/1.1\r\n" + HOST + b"\r\n",
        refusal(
            "HTTP/1.1 422 Unprocessable Entity", b"invalid_request", more=(b'"field":"region"',)
        ),
    ),
    Case(
        "an_empty_max_urgency",
        b"GET /channels/en/events?max_urgency= HTTP/1.1\r\n" + HOST + b"\r\n",
        refusal(
            "HTTP/1.1 422 Unprocessable Entity",
            b"invalid_request",
            more=(b'"field":"max_urgency"',),
        ),
    ),
]


def split_points(case: Case) -> Iterator[int]:
    """Every offset of a short request. A long one (the big heads, up to 16 KB) is split
    at every offset of its first 200 bytes, around its head's end, and where its case
    says: every offset of 16 KB, each a fresh connection, would take seconds and find
    nothing the windows do not (the parser and the guards only change state there)."""
    data = case.request
    if len(data) <= 400:
        yield from range(1, len(data))
        return
    end = data.find(b"\r\n\r\n") + 4
    points = {*range(1, 200), *range(end - 40, end + 40), *case.also_split_at}
    yield from sorted(p for p in points if 0 < p < len(data))


def check(expect: Expect, conn: Conn, reply: Reply, how: str) -> None:
    data = bytes(conn.transport.buffer)
    where = f"{how}: {data[:300]!r}"
    assert reply.status == expect.status, where
    for name, value in expect.headers.items():
        assert reply.headers.get(name) == value, f"{name}: {where}"
    assert reply.status_lines == 1, f"more than one response: {where}"
    if expect.stream:
        assert reply.body.startswith(b"retry:"), where
    if expect.head_only:
        assert reply.body == b"", where
    for part in expect.body_has:
        assert part in reply.body, f"{part!r} not in the body: {where}"
    for part in expect.body_lacks:
        assert part not in reply.body, f"{part!r} in the body: {where}"
    if expect.closes is not None:
        assert conn.transport.closed is expect.closes, f"closed={conn.transport.closed}: {where}"


async def serve(h: Harness, case: Case, parts: Sequence[bytes], how: str) -> None:
    """One connection: the reads, the answer checked, the loss, and nothing left."""
    slots = h.slots()
    conn = h.connect()
    conn.feed_parts(parts)
    reply = await conn.answered(head_only=case.expect.head_only)
    for _ in range(10):  # a late second answer (a pipelined request served) shows here
        await asyncio.sleep(0)
    reply = conn.reply() or reply
    check(case.expect, conn, reply, how)
    conn.lose()
    await h.quiet(slots)


async def keeper(h: Harness) -> Conn:
    """A reader of ``en`` held open while many connections come and go: the channel's
    reader stays up, so each stream opens at once (not a Redis round trip each)."""
    conn = h.connect()
    conn.feed(GOOD_STREAM)
    await conn.answered()
    assert h.slots() == (1, 1)
    return conn


CASE_IDS = [case.name for case in CORPUS]


@pytest.mark.parametrize("case", CORPUS, ids=CASE_IDS)
async def test_each_request_whole_gets_its_answer_and_leaves_no_slot(
    harness: Harness, case: Case
) -> None:
    await serve(harness, case, [case.request], "whole")
    assert harness.slots() == (0, 0)


@pytest.mark.parametrize("case", CORPUS, ids=CASE_IDS)
async def test_each_request_split_in_two_anywhere_gets_the_same_answer(
    harness: Harness, case: Case
) -> None:
    held = await keeper(harness)
    for at in split_points(case):
        data = case.request
        await serve(harness, case, [data[:at], data[at:]], f"split at {at}")
    held.lose()
    await harness.quiet((0, 0))


@pytest.mark.parametrize("case", CORPUS, ids=CASE_IDS)
async def test_each_request_one_byte_at_a_time_gets_the_same_answer(
    harness: Harness, case: Case
) -> None:
    held = await keeper(harness)
    data = case.request
    await serve(harness, case, [data[n : n + 1] for n in range(len(data))], "byte by byte")
    held.lose()
    await harness.quiet((0, 0))


@pytest.mark.parametrize("settings_overrides", [{"head_timeout_s": 0.3}])
async def test_an_http_0_9_request_line_alone_gets_no_stream_and_is_closed_at_the_deadline(
    harness: Harness,
) -> None:
    # ``GET /path`` and a line end: no version, so no head either; the parser waits for
    # more, and the head deadline closes the connection (408: it sent something).
    conns = [harness.connect(), harness.connect()]
    request = b"GET /channels/en/events\r\n"
    conns[0].feed(request)
    conns[1].feed_parts([request[n : n + 1] for n in range(len(request))])
    await until(lambda: all(c.transport.closed for c in conns), timeout=3, what="closed")
    for conn in conns:
        reply = conn.reply()
        assert reply is not None
        assert reply.status == "HTTP/1.1 408 Request Timeout"
        assert reply.headers["content-type"] == "application/json"
        assert b"retry:" not in conn.transport.buffer
        conn.lose()
    await harness.quiet((0, 0))


# -- the channel behind the connections ------------------------------------------------


async def test_a_stream_followed_by_junk_keeps_its_channel_live(harness: Harness) -> None:
    junk = GOOD_STREAM + b"XYZ\x01 / HTTP/1.1\r\n\r\n"
    end = len(GOOD_STREAM)
    reads = [
        [junk],
        [junk[n : n + 1] for n in range(len(junk))],
        [junk[: end + 2], junk[end + 2 :]],  # the junk's parse error in a later read
        [junk[: end - 1], junk[end - 1 :]],  # the head's end and the junk in one read
    ]
    junked = []
    for parts in reads:
        conn = harness.connect()
        conn.feed_parts(parts)
        await conn.answered()
        junked.append(conn)
    clean = harness.connect()
    clean.feed(GOOD_STREAM)
    await clean.answered()
    assert harness.slots() == (5, 5)
    await harness.post("Published after the junk")
    everyone = [*junked, clean]
    await until(
        lambda: all(b"Published after the junk" in c.transport.buffer for c in everyone),
        what="every reader has the item",
    )
    for conn in everyone:
        assert not conn.transport.closed
        assert bytes(conn.transport.buffer).count(b"HTTP/1.1 ") == 1
        conn.lose()
    await harness.quiet((0, 0))


async def test_a_reader_whose_writes_fail_is_released_by_the_fan_out_alone(
    harness: Harness,
) -> None:
    broken_transport = MockTransport(raise_when_closed=True)
    broken = harness.connect(broken_transport)
    broken.feed(GOOD_STREAM)
    await broken.answered()
    others = [harness.connect() for _ in range(2)]
    for conn in others:
        conn.feed(GOOD_STREAM)
        await conn.answered()
    assert harness.slots() == (3, 3)
    # The socket is gone under the stream (a reset): the loop has not said so yet, and
    # every write raises, as uvloop's do on a closed transport.
    broken_transport.closed = True
    await harness.post("Past a broken socket")
    await until(
        lambda: all(b"Past a broken socket" in c.transport.buffer for c in others),
        what="the other readers have the item",
    )
    # Released by the failed write, at once (no heartbeat writes to a closing socket).
    assert harness.slots() == (2, 2)
    assert broken_transport.aborted
    # The channel's reader loop lives on: the next item reaches the others too.
    await harness.post("And the next one")
    await until(
        lambda: all(b"And the next one" in c.transport.buffer for c in others),
        what="the next item",
    )
    broken.lose()  # the transport's own news comes later: nothing is released twice
    await harness.quiet((2, 2))
    for conn in others:
        conn.lose()
    await harness.quiet((0, 0))


class Calls:
    """Counts calls of a method patched on a class, and runs the method."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, cls: type, name: str) -> None:
        self.count = 0
        original = getattr(cls, name)

        def counted(obj: Any, *args: Any) -> Any:
            self.count += 1
            return original(obj, *args)

        monkeypatch.setattr(cls, name, counted)


async def test_a_connection_handed_to_uvicorns_protocol_ends_there(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream_lost = Calls(monkeypatch, Stream, "lost")
    front_lost = Calls(monkeypatch, Front, "connection_lost")
    # Not a stream; an HTTP/1.0 stream (the app's, through ASGI); a keep-alive request,
    # then a stream on the same connection (served natively by uvicorn's protocol).
    livez = harness.connect()
    livez.feed(LIVEZ_LINE + HOST + b"\r\n")
    old = harness.connect()
    old.feed(b"GET /channels/en/events HTTP/1.0\r\n" + HOST + b"\r\n")
    later = harness.connect()
    later.feed(LIVEZ_LINE + HOST + b"\r\n")
    for conn in (livez, old, later):
        await conn.answered()
    later.feed(GOOD_STREAM)
    await until(lambda: b"retry:" in later.transport.buffer, what="the second response")
    assert bytes(later.transport.buffer).count(b"HTTP/1.1 200 OK") == 2
    for conn in (livez, old, later):
        assert isinstance(conn.protocol, HttpProtocol)
    assert harness.slots() == (2, 2)

    livez.lose()
    await harness.quiet((2, 2), tasks=1)  # the HTTP/1.0 stream's
    old.lose()
    await harness.quiet((1, 1))
    assert stream_lost.count == 0  # the app's stream is no native one
    later.lose()
    await harness.quiet((0, 0))
    assert stream_lost.count == 1  # uvicorn's protocol told its own stream, once
    assert front_lost.count == 0  # and the front protocol, gone at the hand-off, nothing
    for conn in (livez, old, later):
        assert conn.front._stream is None
