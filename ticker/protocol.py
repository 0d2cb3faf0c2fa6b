"""uvicorn's HTTP protocol plus one ASGI extension, ``ticker.socket``, and a header limit
that holds before anything is buffered.

Why: through ASGI, every event for every reader is a task wake-up, a generator step and
a chain of ``send`` wrappers before it reaches ``transport.write``; that was two thirds of
what a delivery cost (docs/performance.md). With this extension, a streaming response can
hand its connection to the fan-out, which then writes each batch's bytes, framed once,
straight to every caught-up reader's transport.

Deliberate choices (read before "fixing"):
- The extension is only an optimisation: under any other server (or ``--http h11``, or
  ``TICKER_DIRECT_WRITES=false``) the scope has no ``ticker.socket`` and responses use
  plain ASGI sends. The fan-out writes directly only on HTTP/1.1, where the response is
  chunked by its own header (``eventstream.py``) and ``Socket.frame`` frames each write.
- The ``Socket`` keeps its own state (head sent, ended, client gone, writes paused): it
  reads no field of uvicorn's ``RequestResponseCycle``. The protocol writes three: the
  two that make an HTTP/1.0 body close-delimited (``_close_delimited``), and
  ``disconnected`` on the older requests of a connection that uvicorn forgets when the
  client goes (it marks only the newest; without the flag, a stream ending on a closed
  connection is logged as an error). See docs/uvicorn-notes.md.
- Request heads are counted as bytes arrive, before the parser sees them: httptools
  joins a header's pieces by copying (quadratic), and the ASGI 431 check (``app.py``)
  only runs once all of it is in memory. Past ``TICKER_MAX_HEADER_BYTES`` the connection
  gets a 431 (or, mid-response, is closed) and nothing more is read.
- uvicorn stops reading a connection while a pipelined request waits behind a running
  response, so a client that closes goes unnoticed until a write fails (a stream's next
  heartbeat). Here reading goes on: the bytes are held (bounded) for the parser, and the
  close is seen at once (docs/uvicorn-notes.md).
- What we rely on in uvicorn is checked once at start-up (``compatible``); on a uvicorn
  that has changed shape, ``ticker serve`` logs a warning and uses plain ``httptools``.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

if TYPE_CHECKING:
    from ticker.native import NativeStreams
    from ticker.native_stream import Stream

EXTENSION = "ticker.socket"
# Lifespan state keys (app.py sets them): the app's TICKER_MAX_HEADER_BYTES, and what
# serves streams without the ASGI cycle (native.py), for the protocol.
MAX_HEADER_BYTES = "ticker.max_header_bytes"
STREAMS = "ticker.streams"
DEFAULT_MAX_HEADER_BYTES = 16 * 1024

log = logging.getLogger("ticker.protocol")

Framing = Callable[[bytes], bytes]


def chunk(body: bytes) -> bytes:
    """HTTP/1.1 chunked-transfer framing of one body piece."""
    return b"%x\r\n%s\r\n" % (len(body), body) if body else b""


def identity(body: bytes) -> bytes:
    """A close-delimited (HTTP/1.0) body piece goes out as it is."""
    return body


class Socket:
    """The connection under one streaming response: the ``ticker.socket`` extension.

    The response (``EventStream``) says when its head is sent and when it has ended; the
    protocol says when the client is gone and when the transport asks writers to pause.
    In between, the fan-out may ``write`` bytes it framed with ``framing``."""

    __slots__ = (
        "_on_lost",
        "direct",
        "ended",
        "framing",
        "gone",
        "paused",
        "started",
        "transport",
    )

    def __init__(self, transport: asyncio.WriteTransport, *, http_version: str) -> None:
        self.transport = transport
        self._on_lost: Callable[[], None] | None = None
        # Direct writes only on HTTP/1.1: its body is chunked, each write one chunk.
        self.direct = http_version == "1.1"
        self.framing: Framing = chunk if self.direct else identity
        self.started = False  # the response head has been sent
        self.ended = False  # the response has ended (or never will be sent by us)
        self.gone = False  # the client went away
        self.paused = False  # the transport's buffer is over its high-water mark

    @property
    def done(self) -> bool:
        return self.ended or self.gone

    def writable(self) -> bool:
        """True while a write now would go out at once: head sent, not ended, client
        there, not paused by flow control."""
        return (
            self.direct
            and self.started
            and not self.ended
            and not self.gone
            and not self.paused
            and not self.transport.is_closing()
        )

    def frame(self, body: bytes) -> bytes:
        return self.framing(body)

    def write(self, data: bytes) -> None:
        """Write bytes already framed with ``framing``."""
        self.transport.write(data)

    def abort(self) -> None:
        """Drop the connection now, unsent bytes included (a reader that stopped reading:
        a graceful close would keep its socket and send buffer until the peer reads)."""
        self.transport.abort()

    def on_lost(self, callback: Callable[[], None] | None) -> None:
        """Call ``callback`` once when the client goes away (instead of a task per
        connection waiting for ``http.disconnect``); at once if it has gone already."""
        self._on_lost = callback
        if self.gone:
            self.lost()

    def lost(self) -> None:
        self.gone = True
        callback, self._on_lost = self._on_lost, None
        if callback is not None:
            callback()


def _refusal(limit: int) -> bytes:
    body = json.dumps(
        {"error": "headers_too_large", "message": f"request headers are larger than {limit} bytes"}
    ).encode()
    head = (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
        b"content-type: application/json\r\n"
        b"x-content-type-options: nosniff\r\n"
        b"connection: close\r\n"
        b"content-length: %d\r\n\r\n" % len(body)
    )
    return head + body


class HttpProtocol(HttpToolsProtocol):
    """``ticker serve`` passes this class to uvicorn (``http=HttpProtocol``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        app_state = kwargs.get("app_state") or {}
        self._max_head = int(app_state.get(MAX_HEADER_BYTES, DEFAULT_MAX_HEADER_BYTES))
        self._streams: NativeStreams | None = app_state.get(STREAMS)
        self._native: Stream | None = None  # this connection's stream, served natively
        # The requests of this connection not yet answered, oldest first: the one running
        # and any pipelined behind it (uvicorn answers them in order, one at a time).
        self._sockets: deque[tuple[Socket, RequestResponseCycle]] = deque()
        self._write_paused = False
        self._answering = 0  # requests parsed and not yet answered in full
        self._head: int | None = 0  # bytes of the request head so far; None past it
        self._tail = b""  # the last bytes read, to find a head's end across two reads
        self._refused = False
        self._held: bytearray | None = None  # bytes read while a request waits

    # -- reading ----------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._refused or self._native is not None:
            return  # a stream's connection has nothing more to say: read, and drop
        if self._held is not None:
            self._hold(data)
            return
        if self._head is not None and not self._count_head(data):
            return
        super().data_received(data)

    def _count_head(self, data: bytes) -> bool:
        """Count the request head's bytes before the parser buffers them; refuse past the
        limit. The part of a next pipelined head that shares a read with the previous
        request is not counted: at most one read (256 KiB), still bounded."""
        window = self._tail + data
        end = window.find(b"\r\n\r\n")
        seen = len(data) if end < 0 else max(0, end + 4 - len(self._tail))
        assert self._head is not None
        self._head += seen
        if self._head > self._max_head + 1024:  # request line and separators over the limit
            self._refuse()
            return False
        self._tail = window[-3:]
        return True

    def _refuse(self) -> None:
        self._refused = True
        log.info("refusing a request head over %d bytes", self._max_head)
        if not self._answering:
            self.transport.write(_refusal(self._max_head))
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
        if self._streams is not None and self._take_stream():
            return
        queued = len(self.pipeline)
        cycle = self.cycle
        super().on_headers_complete()
        self._head, self._tail = None, b""
        if self.cycle is cycle:
            return  # an upgrade request: no new cycle, leave it alone
        cycle = self.cycle
        self._answering += 1
        http_version = self.scope.get("http_version", "1.1")
        if http_version == "1.0":
            _close_delimited(cycle)
        socket = Socket(self.transport, http_version=http_version)
        socket.paused = self._write_paused
        extensions: dict[str, Any] = self.scope.setdefault("extensions", {})
        extensions[EXTENSION] = socket
        self._sockets.append((socket, cycle))
        if len(self.pipeline) > queued and self._held is None:
            # uvicorn paused reading: read on, holding the bytes, so a close is seen.
            self._held = bytearray()
            self.transport.resume_reading()

    def _take_stream(self) -> bool:
        """Hand a plain HTTP/1.1 GET to ``native.py`` when nothing else is running on
        this connection; it takes stream requests that it can serve as they are."""
        parser = self.parser
        if (
            parser.get_method() != b"GET"
            or parser.get_http_version() != "1.1"
            or parser.should_upgrade()
            or self.pipeline
            or self.root_path
            or (self.cycle is not None and not self.cycle.response_complete)
        ):
            return False
        from ticker.native import Head  # native.py builds on this module

        assert self._streams is not None
        stream = self._streams.take(
            self.url,
            Head.of(self.headers),
            self.client,
            self.transport,
            self.server_state.default_headers,
        )
        if stream is None:
            return False
        self._native = stream
        self._head, self._tail = None, b""
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
        self._head, self._tail = 0, b""

    def on_response_complete(self) -> None:
        self._answering -= 1
        if self._sockets:
            # The oldest request has its answer: forget it (a keep-alive connection with
            # thousands of requests must not keep, or scan, one entry per request).
            self._sockets.popleft()
        super().on_response_complete()
        held, self._held = self._held, None
        if held and not self.transport.is_closing():
            self.data_received(bytes(held))

    def connection_lost(self, exc: Exception | None) -> None:
        if self._native is not None:
            self._native.lost()
        super().connection_lost(exc)
        sockets, self._sockets = self._sockets, deque()
        for socket, cycle in sockets:
            if not socket.ended:
                # What uvicorn does for the newest request only (see the docstring).
                cycle.disconnected = True
            socket.lost()

    # -- writing ----------------------------------------------------------------------

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._native is not None:
            self._native.flow(paused=True)
        self._write_paused = True
        for socket, _ in self._sockets:
            socket.paused = True

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._native is not None:
            self._native.flow(paused=False)
        self._write_paused = False
        for socket, _ in self._sockets:
            socket.paused = False

    def shutdown(self) -> None:
        if self._native is not None:
            self._native.finish()  # a last retry: and the server's close follows
        super().shutdown()


# Larger than any body we could send: an HTTP/1.0 stream's length is "until close".
_UNBOUNDED = 1 << 62


def _close_delimited(cycle: RequestResponseCycle) -> None:
    """uvicorn's httptools cycle answers HTTP/1.0 with ``Transfer-Encoding: chunked``,
    which HTTP/1.0 clients do not know. A response with neither length nor encoding gets
    a body that ends when the connection closes (RFC 9112 section 6.3) instead."""
    send = cycle.send

    async def close_delimited(message: Any) -> None:
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

    cycle.send = close_delimited  # type: ignore[method-assign]


_PROTOCOL_METHODS = (
    "data_received",
    "on_headers_complete",
    "on_message_complete",
    "on_response_complete",
    "connection_lost",
    "pause_writing",
    "resume_writing",
    "on_body",
    "shutdown",
)


def compatible() -> str | None:
    """None when uvicorn's httptools protocol still has the shape this module relies on;
    otherwise what is missing."""
    for name in _PROTOCOL_METHODS:
        if not callable(getattr(HttpToolsProtocol, name, None)):
            return f"HttpToolsProtocol.{name}"
    params = inspect.signature(HttpToolsProtocol.__init__).parameters
    if "app_state" not in params:
        return "HttpToolsProtocol(app_state=...)"
    names = set(HttpToolsProtocol.__init__.__code__.co_names)
    names |= set(HttpToolsProtocol.connection_made.__code__.co_names)
    names |= set(HttpToolsProtocol.on_message_begin.__code__.co_names)
    for attr in ("pipeline", "cycle", "scope", "transport", "parser", "url", "headers"):
        if attr not in names:
            return f"HttpToolsProtocol.{attr}"
    cycle_names = set(RequestResponseCycle.__init__.__code__.co_names)
    for attr in ("chunked_encoding", "expected_content_length", "disconnected"):
        if attr not in cycle_names:
            return f"RequestResponseCycle.{attr}"
    if not callable(getattr(RequestResponseCycle, "send", None)):
        return "RequestResponseCycle.send"
    return None
