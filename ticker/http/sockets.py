"""The ``ticker.socket`` extension on uvicorn's protocol (``protocol.HttpProtocol``): each
request of a connection gets a ``Socket`` (``fanout/socket.py``) in its scope, kept true
(paused, gone) until the request is answered.

Why: through ASGI, every event for every reader is a task wake-up, a generator step and a
chain of ``send`` wrappers before it reaches ``transport.write``; that was two thirds of
what a delivery cost (docs/performance.md). With it, a streaming response hands its
connection to the fan-out, which writes each batch's bytes, framed once, straight to
every caught-up reader's transport.

The extension is only an optimisation: under any other server (or ``--http h11``, or
``TICKER_DIRECT_WRITES=false``) responses use plain ASGI sends. The fan-out writes
directly only on HTTP/1.1, where the response is chunked by its own header.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from ticker.fanout.socket import Socket


class Sockets:
    """The requests of one connection not yet answered, oldest first, each with its
    socket: the one running and any pipelined behind it (uvicorn answers them in order,
    one at a time)."""

    __slots__ = ("_open", "paused")

    def __init__(self) -> None:
        self._open: deque[tuple[Socket, RequestResponseCycle]] = deque()
        self.paused = False  # the transport asks writers to pause

    def add(self, transport: Any, http_version: str, cycle: RequestResponseCycle) -> Socket:
        """A new request's socket, for its scope."""
        socket = Socket(transport, http_version=http_version)
        socket.paused = self.paused
        self._open.append((socket, cycle))
        return socket

    def answered(self) -> None:
        """The oldest request has its answer: forget it (a keep-alive connection with
        thousands of requests must not keep, or scan, one entry per request)."""
        if self._open:
            self._open.popleft()

    def flow(self, *, paused: bool) -> None:
        self.paused = paused
        for socket, _ in self._open:
            socket.paused = paused

    def lost(self) -> None:
        """The connection is gone: every request is told, not only the newest."""
        sockets, self._open = self._open, deque()
        for socket, cycle in sockets:
            if not socket.ended:
                # What uvicorn does for the newest request only (docs/uvicorn-notes.md, 1).
                cycle.disconnected = True
            socket.lost()
