"""The front door and the app alone answer alike: two real ``ticker serve`` processes on
the same Redis and key prefix, one with the front protocol serving streams itself
(``front.py``, the default) and one with ``TICKER_DIRECT_WRITES=false`` (every request
through uvicorn's protocol and the ASGI app), are sent the same raw request bytes, and
must agree on the status, the headers a client acts on, and the first event (or the
error body). Framing and connection handling may differ: the front's stream body ends
with the connection, the app's is chunked (and is de-chunked here before comparing)."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple

import httpx
import pytest
import redis
from pydantic import SecretStr

from tests.helpers import TickerProcess, make_token, metric_readers, readers, wait_until
from tests.sockets import read_until
from ticker.newsroom.auth import ALL_CHANNELS
from ticker.settings import Settings

pytestmark = pytest.mark.timeout(30)

ORIGINS = "https://a.example,https://b.example"
LIMIT = 16 * 1024  # TICKER_MAX_HEADER_BYTES, the default
READ_S = 3.0  # the longest a door is waited for, per case
# Headers a client (a browser, a cache) acts on: both doors must send the same values.
COMPARED = (
    "content-type",
    "cache-control",
    "access-control-allow-origin",
    "vary",
    "retry-after",
    "x-content-type-options",
    "location",
)
ID = b"@ID@"  # the posted item's id, filled in when a case is sent


@dataclass
class Doors:
    front: TickerProcess
    app: TickerProcess
    item: dict[str, object]

    @property
    def item_id(self) -> str:
        return str(self.item["id"])


@pytest.fixture(scope="module")
def doors(
    redis_url: str, module_prefix: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Doors]:
    folder = tmp_path_factory.mktemp("differential")
    env = {
        "TICKER_REDIS_URL": redis_url,
        "TICKER_KEY_PREFIX": module_prefix,
        "TICKER_HEARTBEAT_S": "1",
        "TICKER_RETRY_MS": "500",
        "TICKER_READ_BLOCK_MS": "1000",
        "TICKER_WRITE_RATE_PER_MINUTE": "60000",
        "TICKER_CORS_ORIGINS": ORIGINS,
        "TICKER_FLEET_REPORT_S": "0.2",
    }
    front = TickerProcess(
        {**env, "TICKER_STATE_DIR": str(folder / "front-state")}, log=folder / "front.log"
    )
    app = TickerProcess(
        {**env, "TICKER_STATE_DIR": str(folder / "app-state"), "TICKER_DIRECT_WRITES": "false"},
        log=folder / "app.log",
    )
    settings = Settings(
        redis_url=SecretStr(redis_url), key_prefix=module_prefix, state_dir=folder / "state"
    )
    try:
        with ThreadPoolExecutor(2) as pool:
            for started in [pool.submit(front.start), pool.submit(app.start)]:
                started.result()
        front.token = app.token = make_token(settings, "differential", [ALL_CHANNELS])
        item = front.post(
            "en", headline="First on air", urgency=2, regions=["europe"], categories=["politics"]
        )
        # The app alone has it too before any case runs (its reader is on the same stream).
        wait_until(lambda: item["id"] in _item_ids(app), timeout=5)
        yield Doors(front, app, item)
    finally:
        front.stop()
        app.stop()
        client = redis.Redis.from_url(redis_url)
        try:
            keys = list(client.scan_iter(match=f"{module_prefix}:*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


def _item_ids(server: TickerProcess) -> list[str]:
    r = httpx.get(f"{server.url}/channels/en/items", timeout=5)
    return [str(i["id"]) for i in r.json()["items"]]


# -- one exchange over a raw socket ---------------------------------------------------------


def dechunk(data: bytes) -> tuple[bytes, bool]:
    """A chunked body's bytes so far, and whether its last chunk came; a partial body
    (a chunk cut short, a size line not complete yet) gives what there is."""
    out, pos = bytearray(), 0
    while True:
        end = data.find(b"\r\n", pos)
        if end < 0:
            return bytes(out), False
        size = int(data[pos:end].split(b";")[0].strip() or b"0", 16)
        if size == 0:
            return bytes(out), True
        start = end + 2
        part = data[start : start + size]
        out += part
        if len(part) < size:
            return bytes(out), False
        pos = start + size + 2


def sse_frames(body: bytes) -> tuple[list[bytes], bool]:
    """A stream body's complete frames up to and including its first event (an
    ``id:``/``event:``/``data:`` frame), heartbeats left out; and whether that is all
    the opening there will be (an event came, or a heartbeat: the opening is over)."""
    frames: list[bytes] = []
    for frame in body.split(b"\n\n")[:-1]:  # the last piece is not complete yet
        lines = frame.split(b"\n")
        if all(line.startswith(b":") for line in lines):
            return frames, True  # a heartbeat: the opening had no event
        frames.append(frame)
        if any(line.startswith((b"id:", b"event:", b"data:")) for line in lines):
            return frames, True
    return frames, False


@dataclass
class Answer:
    """What a door sent back."""

    raw: bytes = b""
    ended: str = "timeout"  # how the read ended: complete, eof, reset, timeout
    status: int | None = None  # None: no response at all
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""  # de-chunked

    def values(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n == name]

    @property
    def stream(self) -> bool:
        return self.status == 200 and self.values("content-type")[:1] == [
            "text/event-stream; charset=utf-8"
        ]

    def first(self) -> list[bytes]:
        """A stream's opening frames up to its first event."""
        return sse_frames(self.body)[0]

    def content(self) -> object:
        """A stream's first frames, a JSON body as data, or other bodies as bytes."""
        if self.stream:
            return self.first()
        if self.body and self.values("content-type")[:1] == ["application/json"]:
            return json.loads(self.body)
        return self.body


def _parse(answer: Answer, head_only: bool) -> bool:
    """Fill in ``answer`` from its raw bytes; True once there is nothing more to wait for."""
    head, sep, rest = answer.raw.partition(b"\r\n\r\n")
    if not sep:
        return False
    status_line, *lines = head.decode("latin-1").split("\r\n")
    answer.status = int(status_line.split(" ")[1])
    answer.headers = []
    for line in lines:
        name, _, value = line.partition(":")
        answer.headers.append((name.strip().lower(), value.strip()))
    if head_only or answer.status in (204, 304) or 100 <= answer.status < 200:
        answer.body = b""
        return True
    if answer.values("transfer-encoding")[:1] == ["chunked"]:
        answer.body, done = dechunk(rest)
    else:
        answer.body, done = rest, False
        length = answer.values("content-length")
        if length:
            answer.body = rest[: int(length[0])]
            done = len(rest) >= int(length[0])
    if answer.stream:
        return done or sse_frames(answer.body)[1]
    return done


def send(port: int, raw: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=READ_S)
    # A door may answer (and close) before a huge head is all sent: what it said counts.
    with contextlib.suppress(OSError):
        sock.sendall(raw)
    return sock


def collect(sock: socket.socket, head_only: bool) -> Answer:
    """Read until the response is complete, its stream's first event (or a heartbeat:
    no event), the connection's end, or ``READ_S``."""
    answer = Answer()
    deadline = time.monotonic() + READ_S
    sock.settimeout(0.05)
    try:
        while time.monotonic() < deadline:
            try:
                part = sock.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                answer.ended = "reset"
                break
            if not part:
                answer.ended = "eof"
                break
            answer.raw += part
            if _parse(answer, head_only):
                answer.ended = "complete"
                break
        _parse(answer, head_only)
    finally:
        sock.close()
    return answer


# -- the corpus -----------------------------------------------------------------------------

STREAM = b"GET /channels/en/events HTTP/1.1\r\nHost: t\r\n"
ITEM = "item"  # the first event is the posted item
RESET = "reset"  # the first event is a reset (the current items follow)
NO_EVENT = "none"  # a retry hint and nothing more (a resume with nothing after it)
ANY = -1  # either answer is allowed, as long as both doors give the same


class Case(NamedTuple):
    raw: bytes
    status: int  # what both doors must answer (ANY: whatever, the same on both)
    first: str | None = None  # a 200 stream's first event
    request_id: str | None = None  # what both must echo in X-Request-ID
    not_echoed: str | None = None  # an X-Request-ID neither may echo (not the first one)

    @property
    def head_only(self) -> bool:
        return self.raw.startswith(b"HEAD ")


def _get(target: bytes, *lines: bytes, version: bytes = b"1.1", host: bytes = b"t") -> bytes:
    head = b"GET %s HTTP/%s\r\nHost: %s\r\n" % (target, version, host)
    return head + b"".join(line + b"\r\n" for line in lines) + b"\r\n"


def _stream(*lines: bytes, query: bytes = b"") -> bytes:
    return _get(b"/channels/en/events" + query, *lines)


def _padded_to_the_limit() -> bytes:
    # rules.head_size: the target, then each header as "name: value\r\n"; exactly LIMIT.
    target = b"/channels/en/events"
    pad = LIMIT - len(target) - (4 + 1 + 4) - (5 + 4)
    raw = _stream(b"X-Pad: " + b"p" * pad)
    assert len(target) + (4 + 1 + 4) + (5 + pad + 4) == LIMIT
    return raw


H2C = (
    b"Connection: Upgrade, HTTP2-Settings",
    b"Upgrade: h2c",
    b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA",
)

CASES: dict[str, Case] = {
    "plain_stream": Case(_stream(b"X-Request-ID: abc-1"), 200, ITEM, "abc-1"),
    "two_request_ids": Case(
        _stream(b"X-Request-ID: abc-1", b"X-Request-ID: xyz-2"), 200, ITEM, "abc-1"
    ),
    # The first X-Request-ID is not one to echo: both make up their own, neither takes
    # the second.
    "unsafe_then_safe_request_id": Case(
        _stream(b"X-Request-ID: not safe!", b"X-Request-ID: abc-1"), 200, ITEM, None, "abc-1"
    ),
    "region_and_category": Case(_stream(query=b"?region=europe&category=politics"), 200, ITEM),
    "max_urgency_3": Case(_stream(query=b"?max_urgency=3"), 200, ITEM),
    "bad_region": Case(_stream(b"X-Request-ID: abc-1", query=b"?region=Bad!"), 422, None, "abc-1"),
    "empty_max_urgency": Case(_stream(query=b"?max_urgency="), 422),
    # First wins: 1 leaves out the item (urgency 2); 9 would show it.
    "two_max_urgencies": Case(_stream(query=b"?max_urgency=1&max_urgency=9"), 200, NO_EVENT),
    "resume_after_the_item": Case(_stream(b"Last-Event-ID: " + ID), 200, NO_EVENT),
    # First wins: an ID that cannot be resumed gets a reset and the current items.
    "bogus_then_real_last_event_id": Case(
        _stream(b"Last-Event-ID: 1-0", b"Last-Event-ID: " + ID), 200, RESET
    ),
    "garbage_then_real_last_event_id": Case(
        _stream(b"Last-Event-ID: garbage", b"Last-Event-ID: " + ID), 200, RESET
    ),
    "last_event_id_in_query": Case(_stream(query=b"?last_event_id=" + ID), 200, NO_EVENT),
    "listed_origin": Case(_stream(b"Origin: https://a.example"), 200, ITEM),
    "two_origins_first_wins": Case(
        _stream(b"Origin: https://b.example", b"Origin: https://evil.example"), 200, ITEM
    ),
    "unlisted_origin": Case(_stream(b"Origin: https://evil.example"), 200, ITEM),
    "unknown_channel": Case(
        _get(b"/channels/nope/events", b"X-Request-ID: abc-1"), 404, None, "abc-1"
    ),
    "head": Case(STREAM.replace(b"GET", b"HEAD", 1) + b"\r\n", 405),
    "post": Case(STREAM.replace(b"GET", b"POST", 1) + b"Content-Length: 0\r\n\r\n", 405),
    "body_by_content_length": Case(STREAM + b"Content-Length: 5\r\n\r\nhello", 400),
    "body_chunked": Case(STREAM + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "content_length_and_chunked": Case(
        STREAM + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400
    ),
    "two_content_lengths": Case(
        STREAM + b"Content-Length: 0\r\nContent-Length: 5\r\n\r\nhello", 400
    ),
    # RFC 9112 5.2: reject obs-fold with a 400, or read it as a space; either, alike.
    "obs_fold": Case(STREAM + b"X-Folded: a\r\n  b\r\n\r\n", ANY),
    # RFC 9112 2.2: a bare LF may be read as a line end; either, alike.
    "bare_lf_line_ends": Case(b"GET /channels/en/events HTTP/1.1\nHost: t\n\n", ANY),
    "nul_in_a_header_value": Case(STREAM + b"X-Nul: a\x00b\r\n\r\n", 400),
    "h2c_upgrade_on_a_stream": Case(_stream(*H2C), 200, ITEM),
    "h2c_upgrade_on_items": Case(_get(b"/channels/en/items", *H2C), 200),
    "h2c_upgrade_on_livez": Case(_get(b"/livez", *H2C), 200),
    "h2c_upgrade_then_http2_preface": Case(
        _stream(*H2C) + b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 200, ITEM
    ),
    "websocket_upgrade_on_a_stream": Case(
        _stream(
            b"Connection: Upgrade",
            b"Upgrade: websocket",
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            b"Sec-WebSocket-Version: 13",
        ),
        200,
        ITEM,
    ),
    "http_1_0_stream": Case(_get(b"/channels/en/events", version=b"1.0"), 200, ITEM),
    "absolute_form_target": Case(_get(b"http://127.0.0.1/channels/en/events"), 200, ITEM),
    "percent_encoded_path": Case(_get(b"/channels/%65n/events"), 200, ITEM),
    "stream_slash_evil_host": Case(_get(b"/channels/en/events/", host=b"evil.example"), 307),
    "desk_slash_evil_host": Case(_get(b"/desk/", host=b"evil.example"), 307),
    "items_slash_evil_host": Case(_get(b"/channels/en/items/", host=b"evil.example"), 307),
    "double_slash_path": Case(_get(b"//evil.example/"), 404),
    # 2,000 x "X-a: b\r\n" counts 16,000 bytes: with the target and Host, under the limit.
    "2000_small_headers": Case(_stream(*[b"X-a: b"] * 2000), 200, ITEM),
    "2100_small_headers": Case(_stream(*[b"X-a: b"] * 2100), 431),
    "16000_empty_headers": Case(_stream(*[b"X:"] * 16_000), 431),
    "one_17kb_header": Case(_stream(b"X-Big: " + b"b" * 17 * 1024), 431),
    "head_at_the_limit": Case(_padded_to_the_limit(), 200, ITEM),
    # The parser drops a value's leading whitespace, so the head counts small; its raw
    # bytes are over the raw guard (TICKER_MAX_HEADER_BYTES + rules.RAW_SLACK) all the same.
    "whitespace_padded_head_over_the_raw_limit": Case(
        _stream(b"X-Pad: " + b" " * 18_000 + b"x"), 431
    ),
    "stream_then_pipelined_junk": Case(_stream() + b"XYZ\x01 / HTTP/1.1\r\n\r\n", 200, ITEM),
    "two_pipelined_streams": Case(_stream() + _stream(), 200, ITEM),
    "http_1_0_stream_then_junk": Case(
        _get(b"/channels/en/events", version=b"1.0") + b"XYZ\x01 / HTTP/1.1\r\n\r\n", 200, ITEM
    ),
    # No body is coming, and nobody reads one: no "100 Continue" before the stream.
    "expect_100_continue": Case(_stream(b"Expect: 100-continue"), 200, ITEM),
    "connection_close": Case(_stream(b"Connection: close"), 200, ITEM),
    "content_length_0": Case(_stream(b"Content-Length: 0"), 200, ITEM),
}


def _exchange(doors: Doors, case: Case) -> tuple[Answer, Answer]:
    raw = case.raw.replace(ID, doors.item_id.encode())
    # Both sent before either is read: the second door's bytes wait in its socket.
    socks = [send(doors.front.port, raw), send(doors.app.port, raw)]
    front, app = (collect(sock, case.head_only) for sock in socks)
    return front, app


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_the_front_door_and_the_app_alone_answer_alike(doors: Doors, case: Case) -> None:
    front, app = _exchange(doors, case)
    shown = f"\nfront ({front.ended}): {front.raw[:600]!r}\napp ({app.ended}): {app.raw[:600]!r}"
    # Status: the same, and the one the rules give (a silent close shows as None).
    assert front.status == app.status, shown
    if case.status != ANY:
        assert front.status == case.status, shown
    if front.status is None:
        return  # both closed without a word
    for name in COMPARED:
        assert front.values(name) == app.values(name), f"{name}: {shown}"
    assert bool(front.values("x-request-id")) == bool(app.values("x-request-id")), shown
    if case.request_id is not None:
        echoed = [front.values("x-request-id"), app.values("x-request-id")]
        assert echoed == [[case.request_id]] * 2, shown
    if case.not_echoed is not None:
        echoed = [front.values("x-request-id"), app.values("x-request-id")]
        assert all(case.not_echoed not in ids for ids in echoed), shown
    for location in front.values("location"):
        assert location.startswith("/") and not location.startswith("//"), shown
        assert "evil.example" not in location, shown
    # The first event of a stream (framing aside), or the error's body.
    assert front.stream == app.stream, shown
    assert front.content() == app.content(), shown
    if front.stream:
        _check_first(front.first(), case.first, doors.item_id, shown)


def _check_first(frames: list[bytes], first: str | None, item_id: str, shown: str) -> None:
    assert frames[:1] == [b"retry: 500"], shown
    events = frames[1:]
    if first == NO_EVENT:
        assert events == [], shown
    elif first == RESET:
        assert events[:1] and events[0].startswith(b"event: reset\nid: \n"), shown
    else:
        assert first == ITEM, "a 200 stream case says what its first event is"
        assert events[:1] and events[0].startswith(f"event: item\nid: {item_id}\n".encode()), shown


# -- after the corpus -------------------------------------------------------------------------


def test_after_the_corpus_no_reader_is_left_and_the_channel_still_delivers(doors: Doors) -> None:
    for server in (doors.front, doors.app):
        wait_until(lambda server=server: readers(server) == 0, timeout=5)
        wait_until(lambda server=server: metric_readers(server) == 0, timeout=5)
    socks = [send(server.port, _stream()) for server in (doors.front, doors.app)]
    try:
        for sock in socks:
            assert read_until(sock, b"retry:", timeout=3).startswith(b"HTTP/1.1 200 OK\r\n")
        # One reader on each process (its own gauge), two across the fleet (/stats).
        for server in (doors.front, doors.app):
            wait_until(lambda server=server: metric_readers(server) == 1, timeout=5)
        wait_until(lambda: readers(doors.front) == readers(doors.app) == 2, timeout=5)
        item = doors.front.post("en", headline="Still on air")
        for sock in socks:
            data = read_until(sock, f"id: {item['id']}\n".encode(), timeout=3)
            assert f"event: item\nid: {item['id']}\n".encode() in data
    finally:
        for sock in socks:
            sock.close()
    for server in (doors.front, doors.app):
        wait_until(lambda server=server: readers(server) == 0, timeout=5)
