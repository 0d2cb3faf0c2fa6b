"""The ASGI response for one SSE connection: ready bytes in, chunked body out.

Deliberate choices (read before "fixing"):
- We do not use sse-starlette's ``EventSourceResponse`` on the hot path. It runs four
  tasks and a lock per connection and takes the lock for every event; that is most of
  what a delivery costs (see docs/performance.md). Here a connection is the request's
  own task; a disconnect ends the feed through ``on_disconnect`` (never by cancelling),
  told by the ``ticker.socket`` extension (``protocol.py``) or, under another server, by
  a second task waiting for ``http.disconnect``.
- Frames arrive already encoded (``sse.py``) and already joined per wake-up, so one
  wake-up is one ``send``: several pending events go out in one write.
- A send that blocks longer than ``send_timeout`` (the client stopped reading and its TCP
  window is full) ends the response; uvicorn then closes the connection. With the
  socket extension, live events skip this class entirely while the reader keeps up
  (``subscriber.py``); what is sent here is the head, heartbeats, a backed-up reader's
  queue and the last ``retry:``.
- Shutdown is cooperative: ``Hub.close`` ends every feed, each feed sends a last
  ``retry:`` and the body is completed, so the process drains in well under a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from ticker.protocol import Socket

log = logging.getLogger("ticker.eventstream")

HEADERS = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    # nginx and similar proxies must not buffer an endless response.
    (b"x-accel-buffering", b"no"),
    # Streams are served ahead of the middleware stack (app.py): its headers are here.
    (b"x-content-type-options", b"nosniff"),
)


class EventStream(Response):
    # A Response only so routes stay typed; it shares nothing with Starlette's body logic.
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
        extra = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()
        ]
        self._raw_headers = [*HEADERS, *extra]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            # Tell the feed, which ends at its next wake-up; no task is cancelled, so no
            # cancellation can be lost inside a library that swallows it.
            if self._on_disconnect is not None:
                self._on_disconnect()

        watcher: asyncio.Task[None] | None = None
        if self._socket is not None:
            self._socket.on_lost(self._on_disconnect)
        else:
            watcher = asyncio.create_task(watch())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self._raw_headers})
            async for chunk in self._frames:
                if not await self._send(
                    send, {"type": "http.response.body", "body": chunk, "more_body": True}
                ):
                    return
            await self._send(send, {"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            if self._socket is not None:
                self._socket.on_lost(None)
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

    async def _send(self, send: Send, message: Message) -> bool:
        try:
            async with asyncio.timeout(self._send_timeout):
                await send(message)
        except TimeoutError:
            log.info("ending a stream whose reader stopped reading for %.0fs", self._send_timeout)
            if self._socket is not None:
                self._socket.abort()
            return False
        except OSError:
            return False  # the connection is gone
        return True
