"""The ASGI response for one SSE connection: ready bytes in, chunked body out.

Deliberate choices (read before "fixing"):
- We do not use sse-starlette's ``EventSourceResponse`` on the hot path. It runs four
  tasks and a lock per connection and takes the lock for every event; that is most of
  what a delivery costs (see docs/performance.md). Here a connection is the request's
  own task plus one task waiting for ``http.disconnect``; the heartbeat is the feed's
  wait timing out, not a task of its own.
- Frames arrive already encoded (``sse.py``) and already joined per wake-up, so one
  wake-up is one ``send``: several pending events go out in one write.
- A send that blocks longer than ``send_timeout`` (the client stopped reading and its TCP
  window is full) ends the response; uvicorn then closes the connection.
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

log = logging.getLogger("ticker.eventstream")

HEADERS = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    # nginx and similar proxies must not buffer an endless response.
    (b"x-accel-buffering", b"no"),
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
    ) -> None:
        self._on_close = on_close
        self.status_code = 200
        self.background = None
        self._frames = frames
        self._send_timeout = send_timeout
        extra = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()
        ]
        self._raw_headers = [*HEADERS, *extra]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        assert task is not None
        disconnected = False

        async def watch() -> None:
            nonlocal disconnected
            while (await receive())["type"] != "http.disconnect":
                pass
            disconnected = True
            task.cancel()  # wake the feed wherever it waits

        watcher = asyncio.create_task(watch())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self._raw_headers})
            async for chunk in self._frames:
                if not await self._send(
                    send, {"type": "http.response.body", "body": chunk, "more_body": True}
                ):
                    return
            await self._send(send, {"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not disconnected:
                raise  # a real cancellation (server shutdown timeout): let it through
            task.uncancel()
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await self._frames.aclose()  # type: ignore[attr-defined]
            if self._on_close is not None:
                self._on_close()

    async def _send(self, send: Send, message: Message) -> bool:
        try:
            async with asyncio.timeout(self._send_timeout):
                await send(message)
        except TimeoutError:
            log.info("ending a stream whose reader stopped reading for %.0fs", self._send_timeout)
            return False
        except OSError:
            return False  # the connection is gone
        return True
