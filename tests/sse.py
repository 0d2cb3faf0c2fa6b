"""An SSE reader on a task of its own, as a browser's EventSource reads a stream."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

import httpx
from httpx_sse import ServerSentEvent, aconnect_sse


@dataclass
class Reader:
    """An SSE reader on its own task, collecting events (heartbeat blanks dropped)."""

    events: list[ServerSentEvent] = field(default_factory=list)
    status: int = 0
    retry: int | None = None
    last: ServerSentEvent | None = None  # the last frame, heartbeat blanks included
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def of(self, kind: str) -> list[dict[str, Any]]:
        import json

        return [json.loads(e.data) for e in self.events if e.event == kind]

    async def wait_for(self, predicate: Any, timeout: float = 5.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate(self):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"reader condition not met; got {len(self.events)} events:"
                    f" {[(e.event, e.id) for e in self.events][:30]}"
                )
            await asyncio.sleep(0.02)

    async def wait_ended(self, retry_ms: int, timeout: float = 5.0) -> None:
        """Wait until the server ends the stream, and check it ended as the server ends
        one: cleanly, its last frame a ``retry:`` of ``retry_ms`` (``stream.finish``)."""
        assert self.task is not None
        await asyncio.wait_for(self.ended.wait(), timeout)
        await asyncio.wait({self.task}, timeout=timeout)
        assert self.task.done() and self.task.exception() is None, self.task
        assert self.last is not None and self.last.retry == retry_ms, self.last

    async def close(self) -> None:
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task


async def connected(reader: Reader, count: int = 0, timeout: float = 5.0) -> Reader:
    """``reader`` once its stream is open (200) and it has ``count`` events."""
    await asyncio.wait_for(reader.connected.wait(), timeout)
    assert reader.status == 200
    await reader.wait_for(lambda r: len(r.events) >= count, timeout)
    return reader


def start_reader(
    url: str,
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
    read_delay: float = 0.0,
) -> Reader:
    reader = Reader()

    async def run() -> None:
        try:
            async with (
                httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as client,
                aconnect_sse(
                    client, "GET", url, headers=dict(headers or {}), params=params
                ) as source,
            ):
                reader.status = source.response.status_code
                reader.connected.set()
                async for event in source.aiter_sse():
                    reader.last = event
                    if event.retry is not None:
                        reader.retry = event.retry
                    if event.data or event.event == "reset":
                        reader.events.append(event)
                    if read_delay:
                        await asyncio.sleep(read_delay)
        finally:
            reader.connected.set()
            reader.ended.set()

    reader.task = asyncio.create_task(run())
    return reader
