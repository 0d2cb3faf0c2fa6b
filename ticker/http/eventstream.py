"""The ASGI response for one SSE connection: ready bytes in, chunked body out.

Deliberate choices (read before "fixing"):
- We do not use sse-starlette's ``EventSourceResponse`` on the hot path. It runs several
  tasks per connection (sender, disconnect listener, pings) and every event is a task
  wake-up and a chain of ASGI sends (since 3.x its lock guards only the pings and the
  last send, not the data); that is most of what a delivery costs (docs/performance.md).
  Here a connection is the request's own task; a disconnect ends the feed through
  ``on_disconnect`` (never by cancelling), told by the ``ticker.socket`` extension
  (``fanout/socket.py``) or, under another server, by a second task waiting for
  ``http.disconnect``.
- The first bytes are taken from the feed before the head is sent: a feed that cannot
  start (Redis unreachable on a resume) is answered 503 with ``Retry-After``, not an
  aborted 200.
- Frames arrive already encoded (``frames.py``, ``events.py``) and already joined per
  wake-up, so one wake-up is one ``send``: several pending events go out in one write.
- A send that blocks longer than ``send_timeout`` (the client stopped reading and its TCP
  window is full) ends the response; uvicorn then closes the connection. With the
  socket extension, live events skip this class entirely while the reader keeps up
  (``fanout/subscriber.py``); what is sent here is the head, heartbeats, a backed-up reader's
  queue and the last ``retry:``.
- Shutdown is cooperative: ``Hub.close`` ends every feed, each feed sends a last
  ``retry:`` and the body is completed, so the process drains in well under a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from functools import partial

from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send

from ticker.domain.errors import TickerError
from ticker.domain.frames import retry_frame
from ticker.fanout.feed import Feed, Gate, Recheck, Wanted
from ticker.fanout.hub import Hub
from ticker.fanout.socket import Socket
from ticker.http.wire import STREAM_HEADERS
from ticker.settings import Settings

log = logging.getLogger("ticker.eventstream")

# The native stream's headers (``wire.py``); Starlette adds the content type.
HEADERS = {k: v for k, v in STREAM_HEADERS.items() if k != "content-type"}
# Our own framing on HTTP/1.1 (the server frames ASGI sends, ``Socket`` direct writes);
# HTTP/1.0 has no chunks, its body ends when the connection does.
CHUNKED = (b"transfer-encoding", b"chunked")


class EventStream(Response):
    """A ``Response`` whose body is the feed's bytes; ``headers`` work as Starlette's."""

    media_type = "text/event-stream"

    def __init__(
        self,
        frames: AsyncIterator[bytes],
        *,
        send_timeout: float,
        headers: Mapping[str, str] | None = None,
        on_close: Callable[[], None] | None = None,
        on_disconnect: Callable[[], None] | None = None,
        socket: Socket | None = None,
    ) -> None:
        self._on_close = on_close
        self._on_disconnect = on_disconnect
        self.status_code = 200
        self.background = None
        self._frames = frames
        self._send_timeout = send_timeout
        self._socket = socket
        self._extra = dict(headers or {})
        self.init_headers({**HEADERS, **self._extra})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            # Tell the feed, which ends at its next wake-up; no task is cancelled, so no
            # cancellation can be lost inside a library that swallows it.
            if self._on_disconnect is not None:
                self._on_disconnect()

        socket = self._socket
        watcher: asyncio.Task[None] | None = None
        if socket is not None:
            socket.on_lost(self._on_disconnect)
        else:
            watcher = asyncio.create_task(watch())
        try:
            try:
                # The first bytes before the head: a feed that cannot start (Redis down)
                # still gets a proper error response instead of an aborted 200.
                first = await anext(self._frames)
            except StopAsyncIteration:
                first = b""
            except TickerError as exc:
                await self._refuse(exc, scope, receive, send)
                return
            headers = list(self.raw_headers)
            if scope.get("http_version", "1.1") == "1.1":
                headers.append(CHUNKED)
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            if socket is not None:
                socket.started = True
            chunk = first
            while True:
                if socket is not None and socket.gone:
                    # Nobody to send to. Let the protocol hear of the close before the
                    # app returns (a failed write aborts the transport a moment later):
                    # uvicorn would otherwise log an unfinished response as an error.
                    await asyncio.sleep(0)
                    return
                if chunk and not await self._send(
                    send, {"type": "http.response.body", "body": chunk, "more_body": True}
                ):
                    return
                try:
                    chunk = await anext(self._frames)
                except StopAsyncIteration:
                    break
            await self._send(send, {"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            if socket is not None:
                socket.ended = True
                socket.on_lost(None)
            try:
                if watcher is not None:
                    watcher.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await watcher
                await self._frames.aclose()  # type: ignore[attr-defined]
            finally:
                # Always, even if we are cancelled in here: the caps count on it.
                if self._on_close is not None:
                    self._on_close()

    async def _refuse(self, exc: TickerError, scope: Scope, receive: Receive, send: Send) -> None:
        log.warning("not starting a stream: %s", exc.message)
        headers = {**self._extra, "x-content-type-options": "nosniff"}
        if exc.status_code == 503:
            headers["retry-after"] = "1"
        response = JSONResponse(exc.body(), status_code=exc.status_code, headers=headers)
        await response(scope, receive, send)

    async def _send(self, send: Send, message: Message) -> bool:
        try:
            async with asyncio.timeout(self._send_timeout):
                await send(message)
        except TimeoutError:
            log.info("ending a stream whose reader stopped reading for %.0fs", self._send_timeout)
            if self._socket is not None:
                self._socket.abort()
                # Let the protocol hear of the close before the app returns: uvicorn would
                # otherwise log an unfinished response as an error.
                await asyncio.sleep(0)
            return False
        except OSError:
            return False  # the connection is gone
        return True


async def _once(chunk: bytes) -> AsyncIterator[bytes]:
    yield chunk


def stream_response(
    feed: Feed,
    hub: Hub,
    settings: Settings,
    wanted: Wanted,
    *,
    address: str,
    headers: dict[str, str],
    socket: Socket | None,
    recheck: Recheck | None = None,
) -> EventStream:
    """A stream's ASGI response, counted against the connection caps. ``recheck``: the
    desk's stream asks at each heartbeat whether its token still reads the channel."""
    if not hub.admit(address):
        # Over capacity: 200 (EventSource gives up on anything else), a long retry, done.
        over = _once(retry_frame(settings.over_capacity_retry_ms))
        return EventStream(over, send_timeout=settings.send_timeout_s, headers=headers)
    if socket is not None and not settings.direct_writes:
        socket.direct = False  # every event through ASGI sends; disconnects still told
    gate = Gate()
    return EventStream(
        feed.events(wanted, gate=gate, socket=socket, recheck=recheck),
        send_timeout=settings.send_timeout_s,
        headers=headers,
        on_close=partial(hub.leave, address),
        on_disconnect=gate.close,
        socket=socket,
    )
