"""One reader's side of the fan-out: shared batches in, bytes out, bounded.

The hot path, per item per reader, is ``Subscriber.offer``. For a reader that is caught
up it is one ``transport.write`` of bytes framed once per batch and filter: no task wakes
up, nothing is queued (the "direct" mode, when the server provides the ``ticker.socket``
extension, see ``socket.py``). A reader whose socket is backed up, or a server without
the extension, gets the queued mode: batches wait in a bounded queue for the connection's
own task, which sends them through ASGI. A reader more than ``limit`` events behind is cut
off; it comes back with ``Last-Event-ID`` (Mercure's rule: memory never grows with a slow
reader).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ticker.domain.events import Event, Filter
from ticker.fanout.socket import Framing, Socket, chunk, identity


class Batch:
    """Events from one XREAD, shared by every subscriber; bytes joined once per filter."""

    __slots__ = ("_wire", "chunked", "events", "first", "joined", "last")

    def __init__(self, events: list[Event], first: tuple[int, int], last: tuple[int, int]) -> None:
        self.events = events
        self.first = first
        self.last = last
        # The frames per filter for readers caught up to before ``first`` (``frames``).
        self.joined: dict[Filter, bytes] = {}
        self._wire: dict[tuple[Filter, Framing], bytes] = {}
        # The chunked bytes per filter for readers caught up to before ``first``.
        self.chunked: dict[Filter, bytes] = {}

    def frames(self, flt: Filter, after: tuple[int, int]) -> bytes:
        """The SSE bytes for events after ``after`` that ``flt`` wants."""
        if after < self.first:
            joined = self.joined.get(flt)
            if joined is None:
                joined = self.joined[flt] = b"".join(e.frame_for(flt) for e in self.events)
            return joined
        return b"".join(e.frame_for(flt) for e in self.events if e.key > after)

    def wire(self, flt: Filter, after: tuple[int, int], framing: Framing) -> bytes:
        """``frames`` framed for a socket (one HTTP chunk), shared by every socket with
        the same filter and framing."""
        if after < self.first:
            key = (flt, framing)
            data = self._wire.get(key)
            if data is None:
                data = self._wire[key] = framing(self.frames(flt, after))
                if framing is chunk:
                    self.chunked[flt] = data
            return data
        body = self.frames(flt, after)
        return framing(body) if body else b""


def deliver(batch: Batch, subscribers: list[Subscriber]) -> list[Subscriber]:
    """Offer ``batch`` to each subscriber; the ones it cut off.

    The fan-out's inner loop, per reader per batch: a caught-up reader with an open
    socket gets the batch's bytes for its filter, joined (and chunked, where its body is
    chunked) once per batch, in one ``transport.write``; every other case takes
    ``Subscriber.offer``."""
    first, last = batch.first, batch.last
    joined, chunked = batch.joined, batch.chunked
    cut = []
    for sub in subscribers:
        sock = sub.socket
        if (
            sock is not None
            and sub.last_sent < first
            and sock.started
            and not sock.paused
            and not sock.ended
            and not sock.gone
            and sock.direct
            and not sub.closed
        ):
            flt = sub.filter
            if sock.framing is identity:
                data = joined.get(flt)
                if data is None:
                    data = batch.frames(flt, sub.last_sent)
            else:
                data = chunked.get(flt)
                if data is None:
                    data = batch.wire(flt, sub.last_sent, chunk)
            if data:
                try:
                    sock.transport.write(data)
                except Exception as exc:  # this reader's socket failed: it alone ends
                    sock.broken(exc)
                    continue
            sub.last_sent = last
            continue
        sub.offer(batch)
        if sub.cut_off:
            cut.append(sub)
    return cut


class Subscriber:
    """One reader: writes batches straight to its socket, or queues them for its task."""

    __slots__ = (
        "_beat_due",
        "_limit",
        "_pending",
        "_timer",
        "_waiter",
        "_waiting",
        "closed",
        "counted",
        "desk",
        "listener",
        "cut_off",
        "filter",
        "last_sent",
        "socket",
    )

    def __init__(
        self, flt: Filter, limit: int, *, counted: bool = True, desk: bool = False
    ) -> None:
        self.filter = flt
        # Whether this reader counts towards items' reach (the desk's own stream does not).
        self.counted = counted
        # The desk's view: its channel reader hands it the desk's batches, not the public.
        self.desk = desk
        self._limit = limit
        self._pending: list[Batch] = []  # a deque is ten times the size of an empty list
        self._waiting = 0
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._beat_due = False
        self.cut_off = False
        self.closed = False
        # The newest event this reader has (the snapshot's position, then each batch).
        self.last_sent: tuple[int, int] = (0, 0)
        # Set by the connection's task when it is caught up; None means "queue".
        self.socket: Socket | None = None
        # Told of every queued batch and of the end, instead of a task waiting in
        # ``next`` (a stream served by the protocol itself, ``ticker/http/stream.py``).
        self.listener: Callable[[], None] | None = None

    def go_direct(self, socket: Socket) -> None:
        """From now on the fan-out writes to ``socket`` itself. Only the connection's task
        calls this, between two sends, so nothing it holds can be overtaken."""
        if not self._pending and not self.closed:
            self.socket = socket

    def offer(self, batch: Batch) -> None:
        if self.closed:
            return
        socket = self.socket
        if socket is not None:
            if socket.writable():
                if batch.last > self.last_sent:
                    data = batch.wire(self.filter, self.last_sent, socket.framing)
                    if data and not socket.send(data):
                        return  # gone: its owner has been told (``Socket.broken``)
                    self.last_sent = batch.last
                return
            # Backed up (or going away): queue, and let the task's send wait for the
            # socket under its send timeout; it goes direct again once caught up.
            self.socket = None
        self._waiting += len(batch.events)
        # A batch into an empty queue is always taken whole: the bound is the limit plus
        # one read batch, and a big XREAD never cuts off a reader that is keeping up.
        if self._pending and self._waiting > self._limit:
            # Too far behind: stop buffering and let it resume from Last-Event-ID.
            self.cut_off = self.closed = True
            self._pending.clear()
        else:
            self._pending.append(batch)
        self._wake()

    def close(self) -> None:
        self.closed = True
        self.socket = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._wake()

    def _wake(self) -> None:
        if self.listener is not None:
            self.listener()
            return
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _beat(self) -> None:
        # A flag, not a clock comparison: uvloop's timers fire on whole milliseconds,
        # sometimes a hair before the deadline a float comparison would expect.
        self._timer = None
        self._beat_due = True
        self._wake()

    async def next(self, heartbeat: float) -> list[Batch] | None:
        """Everything queued; ``[]`` when a heartbeat is due (``heartbeat`` seconds after
        the last one); ``None`` once the subscription has ended."""
        loop = asyncio.get_running_loop()
        while not self._pending and not self.closed:
            if self._beat_due:
                self._beat_due = False
                return []
            if self._timer is None:
                # One timer per heartbeat period, not one per wait: a plain wake-up,
                # never a cancellation (that could tangle with a disconnect).
                self._timer = loop.call_later(heartbeat, self._beat)
            self._waiter = loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self.cut_off or (self.closed and not self._pending):
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            return None
        return self.take()

    def take(self) -> list[Batch]:
        """The queued batches, oldest first; the queue is then empty."""
        batches, self._pending = self._pending, []
        self._waiting = 0
        return batches
