"""Stopping background tasks for sure.

redis-py can swallow a ``CancelledError`` that lands inside a command (it disconnects and
carries on), which leaves a task "cancelling" but alive; a plain ``await task`` after one
``cancel()`` then waits forever. So: cancel, wait a little, and cancel again until done.
"""

from __future__ import annotations

import asyncio


async def stop(task: asyncio.Task[None] | None, *, patience: float = 0.5) -> None:
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=patience)
    if not task.cancelled() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]
