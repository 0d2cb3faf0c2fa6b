"""The connection under one reader, as the fan-out sees it: bytes go out, and it says
when the client is gone or backed up. The HTTP layer (``ticker/http/``) makes these and
keeps their flags true; nothing here knows which server or protocol is underneath.

Deliberate choices (read before "fixing"):
- A write that fails (a transport closed under us, a reset) ends that reader only:
  ``send`` catches it, marks the socket gone and tells its owner (``lost``). No
  exception from one socket may reach the channel's reader loop, which serves every
  other reader of the channel.
- Direct writes happen only on HTTP/1.1, where each write is one chunk (``chunk``) or
  the body ends with the connection (``identity``); the framing is chosen per socket.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger("ticker.fanout")

Framing = Callable[[bytes], bytes]


def chunk(body: bytes) -> bytes:
    """HTTP/1.1 chunked-transfer framing of one body piece."""
    return b"%x\r\n%s\r\n" % (len(body), body) if body else b""


def identity(body: bytes) -> bytes:
    """A close-delimited body piece goes out as it is."""
    return body


class Socket:
    """One reader's connection: the ``ticker.socket`` ASGI extension, or a stream the
    protocol serves itself (``ticker/http/stream.py`` subclasses it).

    The response says when its head is sent and when it has ended; the protocol says
    when the client is gone and when the transport asks writers to pause. In between,
    the fan-out may ``send`` bytes it framed with ``framing``."""

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

    def send(self, data: bytes) -> bool:
        """Write bytes already framed with ``framing``; False (and the socket is gone)
        when the transport refuses them."""
        try:
            self.transport.write(data)
        except Exception as exc:  # uvloop raises on a closed transport; so may others
            self.broken(exc)
            return False
        return True

    def broken(self, exc: BaseException) -> None:
        """A write failed: this reader is gone, and only this one."""
        # At info, not debug: a reader that ends here, and not through its protocol's
        # connection_lost, should leave a trace (a bug would otherwise pass for a reset).
        log.info("ending a reader whose write failed: %r", exc)
        self.lost()
        self.abort()

    def abort(self) -> None:
        """Drop the connection now, unsent bytes included (a reader that stopped reading:
        a graceful close would keep its socket and send buffer until the peer reads)."""
        try:
            self.transport.abort()
        except Exception:  # already closed: nothing left to drop
            log.debug("abort on a closed transport", exc_info=True)

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
