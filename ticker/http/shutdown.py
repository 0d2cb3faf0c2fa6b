"""The stop signal: on SIGTERM a drain, then the server's own shutdown; on SIGINT (Ctrl-C
at a terminal) the shutdown at once.

On the first SIGTERM ``/readyz`` turns 503 (``Hub.begin_drain``) while everything else
still works, so a load balancer's probes take this process out before it goes away. After
``TICKER_DRAIN_S`` the streams end (``Hub.begin_shutdown``: each with a jittered last
``retry:``) and the server's handler runs, which starts uvicorn's shutdown: uvicorn waits
for open responses, and endless streams must end first. Chaining the handler (instead of
patching uvicorn) keeps that explicit. A second signal during the drain stops at once.

Under ``--workers N`` uvicorn's parent sends each worker one SIGTERM and waits for it, so
every worker drains alike.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

log = logging.getLogger("ticker.app")


def on_shutdown_signal(
    shutdown: Callable[[], None],
    *,
    drain: Callable[[], None] = lambda: None,
    drain_s: float = 0.0,
) -> None:
    """Run ``drain``, then after ``drain_s`` ``shutdown`` and the server's own handler."""
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    # Signal handlers run on the main thread, as the loop does: plain state is safe here.
    state: dict[str, Any] = {"draining": False, "stopped": False}

    def on_loop(callback: Callable[..., object], *args: Any) -> None:
        loop.call_soon_threadsafe(callback, *args, context=contextvars.Context())

    for signum in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(signum)

        def stop(num: int, frame: FrameType | None, previous: Any = previous) -> None:
            state["stopped"] = True
            on_loop(shutdown)
            if callable(previous):
                previous(num, frame)

        def drained(num: int, stop: Callable[[int, None], None] = stop) -> None:
            if not state["stopped"]:  # a second signal has stopped us already
                stop(num, None)

        def handler(
            num: int,
            frame: FrameType | None,
            stop: Callable[[int, FrameType | None], None] = stop,
            drained: Callable[[int], None] = drained,
        ) -> None:
            # Ctrl-C (SIGINT) is a person at a terminal: no drain. Orchestrators send SIGTERM.
            if drain_s <= 0 or state["draining"] or num == signal.SIGINT:
                stop(num, frame)
                return
            state["draining"] = True
            log.info("draining for %.1fs: /readyz answers 503 (signal again to stop now)", drain_s)
            on_loop(drain)
            on_loop(lambda: loop.call_later(drain_s, drained, num))

        signal.signal(signum, handler)
