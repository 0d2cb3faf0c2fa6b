"""What accepts each connection under ``ticker serve``: a stream request is served by
``native.py``; anything else is handed, bytes and all, to uvicorn's protocol.

Why: uvicorn's protocol costs about 90 µs of CPU per connection before the app sees a
byte (its per-connection state, flow control, address lookups, the ASGI scope); a lean
protocol that only parses the request head costs a fifth of that (bench/findings.md).
Reconnection storms are all stream requests, so they never pay it; every other request
pays one extra parse of its head, in C.

The hand-off is the one uvicorn itself does for a WebSocket upgrade: a new protocol
(``protocol.HttpProtocol``) takes the transport and is given the bytes read so far. It
then handles the rest of the connection, keep-alive and pipelining included, and its
own header limit (431) and parse errors (400). So anything this module does not
recognise at once, it hands on: a parse error, an upgrade, a head that grows past
the limit, HTTP/1.0, a method other than GET, a request ``NativeStreams.take`` declines.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import httptools

from ticker.native import Head, NativeStreams
from ticker.native_stream import Stream
from ticker.protocol import DEFAULT_MAX_HEADER_BYTES, MAX_HEADER_BYTES, STREAMS, HttpProtocol

log = logging.getLogger("ticker.front")


class Front(asyncio.Protocol):
    """``ticker serve`` passes this class to uvicorn (``http=Front``) when streams are
    served natively; uvicorn builds one per connection, as it would its own."""

    __slots__ = (
        "_app_state",
        "_config",
        "_done",
        "_head",
        "_loop",
        "_max_head",
        "_parser",
        "_read",
        "_server_state",
        "_stream",
        "_streams",
        "_transport",
        "_url",
    )

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._config = config
        self._server_state = server_state
        self._app_state = app_state
        self._loop = _loop
        self._streams: NativeStreams | None = app_state.get(STREAMS)
        self._max_head = int(app_state.get(MAX_HEADER_BYTES, DEFAULT_MAX_HEADER_BYTES)) + 1024
        self._transport: asyncio.Transport | None = None
        self._parser: httptools.HttpRequestParser | None = None
        self._read = b""  # what a hand-off replays
        self._url = b""
        self._head = Head()
        self._done = False  # the head is complete: a stream, or to be handed off
        self._stream: Stream | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._server_state.connections.add(self)  # uvicorn's shutdown closes what is here
        if self._streams is None:
            self._hand_off()
        else:
            self._parser = httptools.HttpRequestParser(self)

    def data_received(self, data: bytes) -> None:
        if self._stream is not None or self._parser is None:
            return  # a stream's connection has nothing more to say: read, and drop
        self._read += data
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:  # the upgrade error too
            self._hand_off()
            return
        if self._stream is not None:
            self._parser, self._read, self._url = None, b"", b""
        elif self._done or len(self._read) > self._max_head:
            self._hand_off()

    # httptools callbacks, for the first request of the connection only

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head.header(name.lower(), value)

    def on_headers_complete(self) -> None:
        if self._done:
            return  # a request pipelined behind the first
        self._done = True
        parser, streams, transport = self._parser, self._streams, self._transport
        assert parser is not None and streams is not None and transport is not None
        if (
            parser.get_method() != b"GET"
            or parser.get_http_version() != "1.1"
            or parser.should_upgrade()
        ):
            return
        peer = transport.get_extra_info("peername")
        client = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else None
        stream = streams.take(
            self._url, self._head, client, transport, self._server_state.default_headers
        )
        if stream is not None:
            self._stream = stream
            try:
                stream.start()
            except Exception:
                # A bug must cost this one connection, never a reader slot for good.
                log.exception("a stream failed to start")
                stream.lost()
                transport.abort()

    def _hand_off(self) -> None:
        transport = self._transport
        assert transport is not None
        read, self._read, self._parser = self._read, b"", None
        self._server_state.connections.discard(self)
        protocol = HttpProtocol(
            config=self._config,
            server_state=self._server_state,
            app_state=self._app_state,
            _loop=self._loop,
        )
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if read:
            protocol.data_received(read)

    # the transport's other callbacks, while this protocol has the connection

    def eof_received(self) -> bool | None:
        return None  # close: a half-closed stream has nobody to send to

    def connection_lost(self, exc: Exception | None) -> None:
        self._server_state.connections.discard(self)
        if self._stream is not None:
            self._stream.lost()
        self._parser = None

    def pause_writing(self) -> None:
        if self._stream is not None:
            self._stream.flow(paused=True)

    def resume_writing(self) -> None:
        if self._stream is not None:
            self._stream.flow(paused=False)

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: a stream's last ``retry:``, then the close."""
        if self._stream is not None:
            self._stream.finish()
        elif self._transport is not None:
            self._transport.close()
