"""The head-read deadline: a connection that has not sent a complete request head within
``TICKER_HEAD_TIMEOUT_S`` is closed, whichever protocol holds it.

Why: neither uvicorn's protocol nor ours had one. A client that connects and sends
nothing, or sends a head one byte a second (slowloris), held its socket for good; a
thousand of them used up a 1,024-descriptor limit, and then nobody could connect.
uvicorn's keep-alive timer covers an idle connection between requests, but the first
byte of a next head cancels it.

One timer per process, not one per connection: every deadline is "now plus the same
timeout", so the order they were added in is the order they fall due, and the sweep only
ever looks at the oldest ones.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Protocol

log = logging.getLogger("ticker.http")


class Waiting(Protocol):
    """A connection waiting for a request head."""

    def head_timeout(self) -> None:
        """The deadline passed: close the connection."""


class HeadDeadlines:
    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._due: OrderedDict[Waiting, float] = OrderedDict()
        self._timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._due)

    def add(self, conn: Waiting) -> None:
        """``conn`` now waits for a head: it has ``timeout_s`` to send one."""
        loop = asyncio.get_running_loop()
        due = self._due
        due.pop(conn, None)
        due[conn] = loop.time() + self.timeout_s
        if self._timer is None:
            self._timer = loop.call_at(due[next(iter(due))], self._sweep)

    def discard(self, conn: Waiting) -> None:
        """``conn`` has its head (or is gone)."""
        self._due.pop(conn, None)

    def _sweep(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        due = self._due
        while due:
            conn, at = next(iter(due.items()))
            if at > now:
                self._timer = loop.call_at(at, self._sweep)
                return
            del due[conn]
            try:
                conn.head_timeout()
            except Exception:  # one connection's close must not stop the sweep
                log.exception("closing a connection at its head deadline failed")

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._due.clear()
