"""uvicorn's HTTP protocol, for every request the front protocol (``front.py``) does not
serve itself: the rules' verdict in the scope, the ``ticker.socket`` extension for
streaming responses (``sockets.py``), a stream on a keep-alive connection served
natively, the head limit and the head-read deadline, and uvicorn bugs worked around
(here, and in the request's cycle: ``cycle.py``).

Deliberate choices (read before "fixing"):
- Every request head is judged here (``rules.judge``) unless the front protocol handed
  its verdict over with the connection; the verdict rides in the scope
  (``door.VERDICT``), so the app never judges a request twice.
- Request heads are counted as bytes arrive, before the parser sees them
  (``rules.HeadCount``): past the limit the connection gets a 431 (or, mid-response, is
  closed) and nothing more is read.
- A connection waiting for a head is on the head-read deadline (``deadline.py``): from
  its first byte (uvicorn cancels its keep-alive timer there) or from its accept.
- An ``Upgrade`` request is served as HTTP/1.1 and its connection closed after the
  response: the parser reads everything after such a head as the new protocol's bytes.
- Bytes that do not parse behind a request still being answered end the connection
  after that answer, never with a 400 written into its middle (as the front protocol
  drops whatever follows a stream's head).
- uvicorn stops reading a connection while a pipelined request waits behind a running
  response, so a client that closes goes unnoticed until a write fails. Here reading goes
  on: the bytes are held (bounded) for the parser, and the close is seen at once
  (docs/uvicorn-notes.md, 1). ``connection_lost`` tells every request of the connection.
- What this class uses of uvicorn's is listed in docs/uvicorn-notes.md and checked over
  the supported uvicorn range by tests/test_uvicorn_shape.py.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ticker.http import wire
from ticker.http.cycle import close_delimited, closing, upgrade_body, upgrade_started
from ticker.http.door import DOOR, SOCKET, VERDICT, Door
from ticker.http.forwarded import client_address
from ticker.http.rules import (
    RAW_SLACK,
    Head,
    HeadCount,
    StreamRequest,
    Verdict,
    headers_too_large,
    judge,
)
from ticker.http.sockets import Sockets
from ticker.http.stream import Stream

DEFAULT_MAX_HEADER_BYTES = 16 * 1024

log = logging.getLogger("ticker.protocol")


class _Unjudged:
    """No verdict yet: this protocol judges the request itself."""


UNJUDGED = _Unjudged()


def head_too_large(limit: int) -> bytes:
    return wire.error_response(431, headers_too_large(limit).body())


def head_timed_out(timeout: float) -> bytes:
    body = {"error": "request_timeout", "message": f"no complete request head within {timeout:g}s"}
    return wire.error_response(408, body)


class HttpProtocol(HttpToolsProtocol):
    """``ticker serve`` passes this class to uvicorn (``http=HttpProtocol``) when streams
    are not served natively; ``front.Front`` hands it every other connection."""

    def __init__(self, *args: Any, handed: Verdict | _Unjudged = UNJUDGED, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        app_state = kwargs.get("app_state") or {}
        self._door: Door | None = app_state.get(DOOR)
        limit = self._door.rules.max_header_bytes if self._door else DEFAULT_MAX_HEADER_BYTES
        self._max_head = limit
        self._count = HeadCount(limit + RAW_SLACK)
        self._in_head = True  # reading a request head
        self._waiting = False  # on the head-read deadline
        # The front protocol's verdict on the first request, which it did not serve.
        self._handed = handed
        self._native: Stream | None = None  # this connection's stream, served natively
        self._sockets = Sockets()  # the requests not yet answered: ``ticker.socket``
        self._answering = 0  # requests parsed and not yet answered in full
        self._refused = False
        self._held: bytearray | None = None  # bytes read while a request waits
        self._feeding = b""  # the bytes being parsed
        self._owed = 0  # body bytes still to come behind an ignored upgrade

    # -- reading ----------------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._wait()

    def data_received(self, data: bytes) -> None:
        if self._owed:
            self._owed = upgrade_body(self.cycle, data, self._owed)
            return
        if self._refused or self._native is not None:
            return  # a stream's connection has nothing more to say: read, and drop
        if self._held is not None:
            self._hold(data)
            return
        if self._in_head:
            if not self._answering:
                self._wait()
            if not self._count.add(data):
                self._refuse()
                return
        self._feeding = data  # for an upgrade that is not taken (``_unsupported_upgrade_warning``)
        super().data_received(data)
        self._feeding = b""

    def _wait(self) -> None:
        if not self._waiting and self._door is not None:
            self._waiting = True
            self._door.deadlines.add(self)

    def _unwait(self) -> None:
        if self._waiting:
            self._waiting = False
            assert self._door is not None
            self._door.deadlines.discard(self)

    def head_timeout(self) -> None:
        """The head-read deadline passed (``deadline.py``)."""
        self._waiting = False
        if self._native is not None or self._answering or self.transport.is_closing():
            return
        if self._count.seen:
            assert self._door is not None
            self.transport.write(head_timed_out(self._door.deadlines.timeout_s))
        log.info("closing a connection that sent no complete request head in time")
        self.transport.close()

    def _refuse(self) -> None:
        self._refused = True
        self._unwait()
        log.info("refusing a request head over %d bytes", self._max_head)
        if not self._answering:
            self.transport.write(head_too_large(self._max_head))
        # Mid-response there is no room for a 431: the connection just ends.
        self.transport.close()

    def _hold(self, data: bytes) -> None:
        assert self._held is not None
        self._held += data
        if len(self._held) > self._max_head:
            # Enough waiting: stop reading, as uvicorn would (the close goes unnoticed again
            # until a write fails, but memory stays bounded).
            self.transport.pause_reading()

    def on_headers_complete(self) -> None:
        if self._native is not None:
            return  # a request pipelined behind a stream, in the same read: dropped
        if self.parser.get_http_version() not in ("1.0", "1.1"):
            # llhttp reads a request line without a version as HTTP/0.9, headers after
            # it; ASGI has no such version. Raised here, feed_data raises a parse error
            # and uvicorn answers 400.
            raise ValueError("a request line without an HTTP version")
        self._unwait()
        verdict, self._handed = self._handed, UNJUDGED
        if verdict is UNJUDGED and self._door is not None:
            head = Head.of_target(self.parser.get_method(), self.url, self.headers)
            verdict = judge(head, self._door.rules) if head is not None else None
            # (A verdict handed over is one the front protocol chose not to serve.)
            if isinstance(verdict, StreamRequest) and self._take_stream(verdict):
                return
        queued = len(self.pipeline)
        cycle = self.cycle
        super().on_headers_complete()
        self._in_head = False
        self._count.reset()
        if self.cycle is cycle:
            return  # a WebSocket upgrade (never, with ws="none"): no new cycle
        cycle = self.cycle
        if self.parser.should_upgrade():
            # Served as HTTP/1.1; whatever follows the head is not HTTP, so the
            # connection closes after the response.
            closing(cycle)
        self._answering += 1
        http_version = self.scope.get("http_version", "1.1")
        if http_version == "1.0":
            close_delimited(cycle)
        extensions: dict[str, Any] = self.scope.setdefault("extensions", {})
        if not isinstance(verdict, _Unjudged):
            extensions[VERDICT] = verdict
        extensions[SOCKET] = self._sockets.add(self.transport, http_version, cycle)
        if len(self.pipeline) > queued and self._held is None:
            # uvicorn paused reading: read on, holding the bytes, so a close is seen.
            self._held = bytearray()
            self.transport.resume_reading()

    def _take_stream(self, wanted: StreamRequest) -> bool:
        """Serve a stream request natively when nothing else runs on this connection."""
        door = self._door
        if (
            door is None
            or door.streams is None
            or self.parser.get_http_version() != "1.1"
            or self.pipeline
            or self.root_path
            or (self.cycle is not None and not self.cycle.response_complete)
        ):
            return False
        client = client_address(self.client, self.headers, door.rules.proxies)
        stream = door.streams.take(
            wanted, self.url, client, self.transport, self.server_state.default_headers
        )
        if stream is None:
            return False  # over capacity: the app answers
        self._native = stream
        self._in_head = False
        # Nothing of the request is needed again: keep no scope per idle reader.
        self.scope = self.headers = None  # type: ignore[assignment]
        self.url = b""
        stream.start()
        return True

    def on_body(self, body: bytes) -> None:
        if self._native is None:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._native is not None:
            return
        super().on_message_complete()
        self._in_head = True
        self._count.reset()

    def on_response_complete(self) -> None:
        self._answering -= 1
        self._sockets.answered()
        super().on_response_complete()
        held, self._held = self._held, None
        if held and not self.transport.is_closing():
            self.data_received(bytes(held))

    def send_400_response(self, msg: str) -> None:
        if self._native is not None or self._answering:
            # Junk behind a request still being answered (a stream, say): uvicorn would
            # write its 400 into the middle of that response. The answer goes on instead,
            # nothing more is parsed, and the connection closes once it is complete.
            self._refused = True
            if self.cycle is not None and not self.cycle.response_complete:
                closing(self.cycle)
            return
        super().send_400_response(msg)

    def _unsupported_upgrade_warning(self) -> None:
        # uvicorn's ``data_received`` calls this inside its ``except HttpParserUpgrade``,
        # for an upgrade it does not take (every one, with ws="none"). It warned, twice,
        # naming WebSocket libraries; an h2c offer (``curl --http2``) is ordinary. The
        # request is served as HTTP/1.1; nothing after it is parsed (the parser reads it
        # as the new protocol's), and the connection closes after the response.
        log.debug("serving an Upgrade request as HTTP/1.1")
        exc = sys.exception()
        data, self._feeding = self._feeding, b""
        self._refused = True
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            return
        closing(cycle)
        # The app still gets its body (a POST over ``curl --http2``).
        self._owed = upgrade_started(cycle, self.headers or [], data, exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._unwait()
        if self._native is not None:
            self._native.lost()  # once only, however often told (``Stream._end``)
        super().connection_lost(exc)
        self._sockets.lost()  # every request, not only the newest (see the docstring)

    # -- writing ----------------------------------------------------------------------

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._native is not None:
            self._native.flow(paused=True)
        self._sockets.flow(paused=True)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._native is not None:
            self._native.flow(paused=False)
        self._sockets.flow(paused=False)

    def shutdown(self) -> None:
        if self._native is not None:
            self._native.finish()  # a last retry: and the server's close follows
        super().shutdown()
