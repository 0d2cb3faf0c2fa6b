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
import weakref
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

EXTENSION = "ticker.socket"


class Socket:
    """The connection under one response: see ``subscriber.Socket``."""

    __slots__ = ("_cycle", "_gone", "_on_lost", "_transport")

    def __init__(self, cycle: RequestResponseCycle, transport: asyncio.Transport) -> None:
        # Weak: the scope holds this object and the cycle holds the scope; a strong
        # reference would leave every request to the cyclic garbage collector.
        self._cycle = weakref.ref(cycle)
        self._transport = transport
        self._on_lost: Callable[[], None] | None = None
        self._gone = False

    @property
    def done(self) -> bool:
        cycle = self._cycle()
        return cycle is None or cycle.response_complete or self._gone

    def writable(self) -> bool:
        cycle = self._cycle()
        return (
            cycle is not None
            and cycle.chunked_encoding is True
            and cycle.response_started
            and not cycle.response_complete
            and not cycle.disconnected
            and not cycle.flow.write_paused
            and not self._transport.is_closing()
        )

    def write(self, chunk: bytes) -> None:
        self._transport.write(chunk)

    def abort(self) -> None:
        """Drop the connection now, unsent bytes included (a reader that stopped reading:
        a graceful close would keep its socket and send buffer until the peer reads)."""
        self._transport.abort()

    def on_lost(self, callback: Callable[[], None] | None) -> None:
        """Call ``callback`` once when the client goes away (instead of a task per
        connection waiting for ``http.disconnect``); at once if it has gone already."""
        self._on_lost = callback
        if self._gone:
            self.lost()

    def lost(self) -> None:
        self._gone = True
        cycle = self._cycle()
        if cycle is not None and not cycle.response_complete:
            # uvicorn marks only the newest request of a connection as disconnected; a
            # stream with a pipelined request queued behind it must know too, or its
            # sends would go to a closed transport.
            cycle.disconnected = True
        callback, self._on_lost = self._on_lost, None
        if callback is not None:
            callback()


class HttpProtocol(HttpToolsProtocol):
    """``uvicorn --http ticker.protocol:HttpProtocol``; ``ticker serve`` uses it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Every request of this connection still running: the streaming one and any
        # pipelined behind it (uvicorn itself only keeps the newest).
        self._sockets: list[Socket] = []

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        # An upgrade request returns early without a new cycle: leave it alone.
        if cycle is not None and cycle.scope is self.scope:
            socket = Socket(cycle, self.transport)
            extensions: dict[str, Any] = self.scope.setdefault("extensions", {})
            extensions[EXTENSION] = socket
            self._sockets = [s for s in self._sockets if not s.done]
            self._sockets.append(socket)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        sockets, self._sockets = self._sockets, []
        for socket in sockets:
            socket.lost()
