"""What accepts each connection under ``ticker serve``: a stream request is served right
here (``streams.py``); anything else is handed, bytes and verdict, to uvicorn's protocol
(``protocol.HttpProtocol``).

Why: uvicorn's protocol costs several times a bare protocol's CPU per connection before
the app sees a byte (its per-connection state, flow control, address lookups, the ASGI
scope; docs/decisions/0003). Reconnection storms are all stream requests, so they never
pay it; every other request pays one extra parse of its head, in C.

Deliberate choices (read before "fixing"):
- Only the first request head of a connection is parsed here, and judged once
  (``rules.judge``). A stream request on HTTP/1.1 with room under the caps is served;
  anything else (not a stream, a refusal, HTTP/1.0, over capacity, a head over the
  byte guard, a parse error, a token's stream, whose token the app checks) is handed
  over with the verdict, so the app answers it without judging it again. The hand-off
  is the one uvicorn does for a WebSocket upgrade: a new protocol takes the transport
  and is given the bytes read so far.
- Once a stream is served, the connection is the stream's until it closes: whatever the
  client sends after the head (a pipelined request, junk, an upgraded protocol's bytes)
  is read and dropped, and a parse error in it changes nothing. A connection is never
  handed on with a stream running, so its close always reaches the stream here.
- An ``Upgrade`` header is ignored: the request is judged and served as HTTP/1.1.
- A connection that has not sent a whole head within ``TICKER_HEAD_TIMEOUT_S`` is closed
  (``deadline.py``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import httptools

from ticker.http import protocol
from ticker.http.door import DOOR, Door
from ticker.http.forwarded import client_address
from ticker.http.rules import Head, StreamRequest, Verdict, head_part, judge
from ticker.http.stream import Stream

log = logging.getLogger("ticker.front")

# Shared by every connection past its head: never appended to (``on_header`` stops there).
_DONE: list[tuple[bytes, bytes]] = []


class Front(asyncio.Protocol):
    """``ticker serve`` passes this class to uvicorn (``http=Front``) when streams are
    served natively; uvicorn builds one per connection, as it would its own."""

    __slots__ = (
        "_app_state",
        "_config",
        "_door",
        "_headers",
        "_judged",
        "_loop",
        "_parser",
        "_read",
        "_server_state",
        "_stream",
        "_transport",
        "_url",
        "_verdict",
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
        door: Door | None = app_state.get(DOOR)
        self._door = door if door is not None and door.streams is not None else None
        self._transport: asyncio.Transport | None = None
        self._parser: httptools.HttpRequestParser | None = None
        self._read = b""  # what a hand-off replays
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._judged = False  # the first head is complete and judged
        self._verdict: Verdict = None
        self._stream: Stream | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._server_state.connections.add(self)  # uvicorn's shutdown closes what is here
        door = self._door
        if door is None:
            self._hand_off(protocol.UNJUDGED)
            return
        self._parser = httptools.HttpRequestParser(self)
        door.deadlines.add(self)

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None:
            return  # a stream's connection has nothing more to say: read, and drop
        self._read += data
        door = self._door
        if not self._judged and door is not None:
            # The raw guard before the parser sees the bytes, as ``HttpProtocol``'s
            # ``HeadCount``: whitespace the parser drops from a value counts too.
            seen = head_part(self._read, len(self._read) - len(data))
            if seen > door.rules.raw_head_limit:
                self._hand_off(protocol.UNJUDGED)  # uvicorn's protocol answers 431
                return
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # the head is complete; what follows it is not HTTP, and is not read
        except httptools.HttpParserError:
            if self._stream is None and not self._judged:
                self._hand_off(protocol.UNJUDGED)  # uvicorn's protocol answers 400
                return
        if self._stream is not None:
            # Nothing of the request is kept for the stream's life: an idle reader's
            # memory is what the stream itself needs.
            self._parser, self._read, self._url, self._headers = None, b"", b"", _DONE
            self._verdict = None
        elif self._judged:
            self._hand_off(self._verdict)

    # httptools callbacks, for the first request of the connection only

    def on_url(self, url: bytes) -> None:
        if not self._judged:
            self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._judged:
            self._headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        if self._judged:
            return  # a request pipelined behind the first
        self._judged = True
        parser, door, transport = self._parser, self._door, self._transport
        assert parser is not None and door is not None and transport is not None
        door.deadlines.discard(self)
        head = Head.of_target(parser.get_method(), self._url, self._headers)
        verdict = self._verdict = judge(head, door.rules) if head is not None else None
        if not isinstance(verdict, StreamRequest) or parser.get_http_version() != "1.1":
            return
        assert door.streams is not None
        peer = transport.get_extra_info("peername")
        client = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else None
        client = client_address(client, self._headers, door.rules.proxies)
        stream = door.streams.take(
            verdict, self._url, client, transport, self._server_state.default_headers
        )
        if stream is None:
            return  # over capacity: handed on, the app answers
        self._stream = stream
        stream.start()

    def _hand_off(self, verdict: Verdict | Any) -> None:
        transport = self._transport
        assert transport is not None and self._stream is None
        if self._door is not None:
            self._door.deadlines.discard(self)
        read, self._read, self._parser, self._headers = self._read, b"", None, _DONE
        self._server_state.connections.discard(self)
        handler = protocol.HttpProtocol(
            config=self._config,
            server_state=self._server_state,
            app_state=self._app_state,
            _loop=self._loop,
            handed=verdict,
        )
        transport.set_protocol(handler)
        handler.connection_made(transport)
        if read:
            handler.data_received(read)

    def head_timeout(self) -> None:
        """The head-read deadline passed (``deadline.py``)."""
        transport = self._transport
        if self._judged or transport is None or transport.is_closing():
            return
        if self._read:
            assert self._door is not None
            transport.write(protocol.head_timed_out(self._door.deadlines.timeout_s))
        log.info("closing a connection that sent no complete request head in time")
        transport.close()

    # the transport's other callbacks, while this protocol has the connection

    def eof_received(self) -> bool | None:
        return None  # close: a half-closed stream has nobody to send to

    def connection_lost(self, exc: Exception | None) -> None:
        self._server_state.connections.discard(self)
        if self._door is not None:
            self._door.deadlines.discard(self)
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
