"""uvicorn's HTTP protocol plus one ASGI extension, ``ticker.socket``.

Why: through ASGI, every event for every reader is a task wake-up, a generator step and
a chain of ``send`` wrappers before it reaches ``transport.write``; that was two thirds of
what a delivery cost (docs/performance.md). With this extension, a streaming response can
hand its connection to the fan-out, which then writes each batch's bytes, framed once,
straight to every caught-up reader's transport.

The extension is only an optimisation: under any other server (or ``--http h11``) the
scope has no ``ticker.socket`` and responses use plain ASGI sends. It leans on uvicorn's
``RequestResponseCycle`` attributes (``response_started``, ``chunked_encoding``, ...), so
uvicorn is pinned to a minor range in pyproject.toml and tests run both paths.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

EXTENSION = "ticker.socket"


class Socket:
    """The connection under one response: see ``subscriber.Socket``."""

    __slots__ = ("_cycle", "_gone", "_on_lost", "_transport")

    def __init__(self, cycle: RequestResponseCycle, transport: asyncio.Transport) -> None:
        self._cycle = cycle
        self._transport = transport
        self._on_lost: Callable[[], None] | None = None
        self._gone = False

    def writable(self) -> bool:
        cycle = self._cycle
        return (
            cycle.chunked_encoding is True
            and cycle.response_started
            and not cycle.response_complete
            and not cycle.disconnected
            and not cycle.flow.write_paused
            and not self._transport.is_closing()
        )

    def write(self, chunk: bytes) -> None:
        self._transport.write(chunk)

    def on_lost(self, callback: Callable[[], None] | None) -> None:
        """Call ``callback`` once when the client goes away (instead of a task per
        connection waiting for ``http.disconnect``); at once if it has gone already."""
        self._on_lost = callback
        if self._gone:
            self.lost()

    def lost(self) -> None:
        self._gone = True
        callback, self._on_lost = self._on_lost, None
        if callback is not None:
            callback()


class HttpProtocol(HttpToolsProtocol):
    """``uvicorn --http ticker.protocol:HttpProtocol``; ``ticker serve`` uses it."""

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        # An upgrade request returns early without a new cycle: leave it alone.
        if cycle is not None and cycle.scope is self.scope:
            extensions: dict[str, Any] = self.scope.setdefault("extensions", {})
            extensions[EXTENSION] = Socket(cycle, self.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        cycle = self.cycle
        super().connection_lost(exc)
        if cycle is not None:
            socket = cycle.scope.get("extensions", {}).get(EXTENSION)
            if isinstance(socket, Socket):
                socket.lost()
