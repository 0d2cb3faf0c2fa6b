#!/usr/bin/env python3
"""Bench-only experiment: ticker with the per-delivery costs the profile points at
removed, to measure what removing them would buy. NOT a fix to ship as is: it is a
monkeypatch of the working tree's classes, run as

    BENCH_LEAN=1 python bench/experiments/lean.py serve --port 8000 ...   (same CLI as ticker)

Levels (BENCH_LEAN):
  1  "lean stream": no timer made per wake-up (one heartbeat timer per period) and no
     asyncio.timeout() per send, a plain future instead of asyncio.Event, and the SSE
     route served outside Starlette's middleware stack (the security headers go into the
     response headers instead). The per-send timeout for stalled readers is dropped
     here; a real fix would keep it with one watchdog per hub (see docs/performance.md).
  2  level 1 + "direct writes": once a reader is live and caught up, the channel's reader
     task writes each batch's pre-framed bytes straight to the reader's transport
     (one transport.write per reader per batch, no task wake-up, no ASGI send). A reader
     whose transport is paused (slow client) or closing falls back to the queued path,
     so the subscriber buffer, cut-off and heartbeat rules still hold.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import sys
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

LEVEL = int(os.environ.get("BENCH_LEAN", "1"))

from ticker import (  # noqa: E402
    api,
    eventstream,
    feed,
    hub,
)
from ticker import app as app_mod  # noqa: E402
from ticker.errors import TickerError  # noqa: E402

_current_send: contextvars.ContextVar = contextvars.ContextVar("bench_send", default=None)
_sub_holder: contextvars.ContextVar = contextvars.ContextVar("bench_subs", default=None)


class LeanSubscriber:
    """hub.Subscriber's interface, with one long-lived heartbeat timer instead of an
    asyncio.timeout() per wait, and a bare future instead of asyncio.Event."""

    __slots__ = (
        "_limit",
        "_pending",
        "_waiting",
        "_fut",
        "_loop",
        "_hb_at",
        "_hb",
        "cut_off",
        "closed",
        "filter",
        "direct",
        "last_sent",
    )

    def __init__(self, flt, limit):
        self.filter = flt
        self._limit = limit
        self._pending = deque()
        self._waiting = 0
        self._fut = None
        self._loop = None
        self._hb_at = 0.0
        self._hb = None
        self.cut_off = False
        self.closed = False
        self.direct = None  # uvicorn RequestResponseCycle when writing directly
        self.last_sent = None
        holder = _sub_holder.get()
        if holder is not None:
            holder.append(self)

    def _wake(self):
        f = self._fut
        if f is not None and not f.done():
            f.set_result(None)

    def offer(self, batch):
        if self.closed:
            return
        cyc = self.direct
        if cyc is not None:
            if (
                not self._pending
                and not cyc.disconnected
                and not cyc.flow.write_paused
                and not cyc.transport.is_closing()
            ):
                if batch.last > self.last_sent:
                    data = batch.framed(self.filter, self.last_sent)
                    if data:
                        cyc.transport.write(data)
                    self.last_sent = batch.last
                return
            self.direct = None  # slow or gone: back to the queued path
        self._waiting += len(batch.events)
        if self._pending and self._waiting > self._limit:
            self.cut_off = self.closed = True
            self._pending.clear()
        else:
            self._pending.append(batch)
        self._wake()

    def close(self):
        self.closed = True
        self._wake()

    async def next(self, timeout):
        while not self._pending and not self.closed:
            loop = self._loop
            if loop is None:
                loop = self._loop = asyncio.get_running_loop()
            now = loop.time()
            if self._hb_at <= now:
                self._hb_at = now + timeout
                self._hb = loop.call_at(self._hb_at, self._wake)
            self._fut = loop.create_future()
            await self._fut
            self._fut = None
            if not self._pending and not self.closed and loop.time() >= self._hb_at:
                return []
        if self.cut_off or (self.closed and not self._pending):
            if self._hb is not None:
                self._hb.cancel()
            return None
        batches = list(self._pending)
        self._pending.clear()
        self._waiting = 0
        return batches


def _framed(self, flt, after):
    """Batch.frames() with the HTTP chunk framing, cached per filter like the frames
    (in the batch's own cache dict, under a distinct key)."""
    if after < self.first:
        key = ("framed", flt)
        data = self._joined.get(key)
        if data is None:
            body = self.frames(flt, after)
            data = self._joined[key] = (b"%x\r\n%s\r\n" % (len(body), body)) if body else b""
        return data
    body = self.frames(flt, after)
    return (b"%x\r\n%s\r\n" % (len(body), body)) if body else b""


def install():
    hub.Subscriber = LeanSubscriber
    hub.Batch.framed = _framed

    async def _send(self, send, message):
        try:
            await send(message)
        except OSError:
            return False
        return True

    eventstream.EventStream._send = _send

    if LEVEL >= 2:
        feed.events = _direct_events

    orig_create = app_mod.create_app

    def create_app(settings=None):
        star = orig_create(settings)
        sec = [
            (b"content-security-policy", app_mod.CSP.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"strict-origin-when-cross-origin"),
        ]

        async def asgi(scope, receive, send):
            path = scope.get("path", "")
            if (
                scope["type"] == "http"
                and path.startswith("/channels/")
                and path.endswith("/events")
            ):
                parts = path.split("/")
                if len(parts) == 4:
                    from starlette.requests import Request

                    scope["app"] = star
                    scope["path_params"] = {"channel": parts[2]}
                    try:
                        response = await api.channel_events(Request(scope, receive))
                    except TickerError:
                        await star(scope, receive, send)  # the normal error response
                        return
                    response._raw_headers = [*response._raw_headers, *sec]
                    token = _current_send.set(send)
                    try:
                        await response(scope, receive, send)
                    finally:
                        _current_send.reset(token)
                    return
            await star(scope, receive, send)

        return asgi

    app_mod.create_app = create_app


_orig_events = feed.events


async def _direct_events(*, hub, desk, store, settings, channel, flt, last_event_id, **kw):
    """A copy of feed.events' live loop with direct writes (level 2). The head (snapshot
    or replay) is produced by the original code path; see feed.py."""
    from ticker.sse import retry_frame

    # The original feed registers the subscriber and yields the head (snapshot or
    # replay) first; the subscriber it creates is caught through a context variable.
    holder: list = []
    token = _sub_holder.set(holder)
    gen = _orig_events(
        hub=hub,
        desk=desk,
        store=store,
        settings=settings,
        channel=channel,
        flt=flt,
        last_event_id=last_event_id,
        **kw,
    )
    try:
        head = await gen.__anext__()
        _sub_holder.reset(token)
        token = None
        sub = holder[0] if len(holder) == 1 else None
        # The original's locals hold last_sent (set before the head on the snapshot path).
        frame = gen.ag_frame
        last_sent = frame.f_locals.get("last_sent") if frame is not None else None
        if sub is None or last_sent is None:
            yield head
            async for chunk in gen:
                yield chunk
            return
        sub.last_sent = last_sent
        yield head
        send = _current_send.get()
        cycle = getattr(send, "__self__", None)
        can_direct = cycle is not None and hasattr(cycle, "transport") and hasattr(cycle, "flow")
        while True:
            if can_direct and sub.direct is None and not sub._pending and not sub.closed:
                sub.direct = cycle  # caught up: the reader task writes from now on
            batches = await sub.next(settings.heartbeat_s)
            if batches is None:
                yield retry_frame(settings.retry_ms)
                return
            if not batches:
                yield feed.HEARTBEAT
                continue
            chunk = b"".join(b.frames(flt, sub.last_sent) for b in batches)
            sub.last_sent = max(sub.last_sent, batches[-1].last)
            if chunk:
                yield chunk
    finally:
        if token is not None:
            _sub_holder.reset(token)
        await gen.aclose()


if __name__ == "__main__":
    install()
    from ticker.cli import main

    main()
