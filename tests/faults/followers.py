"""Readers and a publisher for the fault tests: a reader that behaves like EventSource
(reconnects, resumes with Last-Event-ID) and a publisher at a fixed rate that records which
items were acknowledged."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field

import httpx
from httpx_sse import aconnect_sse


@dataclass
class Follower:
    """A reader that behaves like EventSource: reconnects and resumes with Last-Event-ID."""

    seen: list[int] = field(default_factory=list)
    resets: int = 0
    statuses: set[int] = field(default_factory=set)
    last_id: str | None = None


async def follow(urls: str | list[str], reader: Follower, stop: asyncio.Event) -> None:
    """Like EventSource: reconnect after any failure with Last-Event-ID; given several
    URLs (servers behind no shared address), try the next one each time."""
    urls = [urls] if isinstance(urls, str) else urls
    turn = 0
    async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=5)) as client:
        while not stop.is_set():
            url = urls[turn % len(urls)]
            turn += 1
            headers = {"Last-Event-ID": reader.last_id} if reader.last_id else {}
            try:
                async with aconnect_sse(client, "GET", url, headers=headers) as source:
                    reader.statuses.add(source.response.status_code)
                    async for event in source.aiter_sse():
                        if event.event == "reset":
                            reader.resets += 1
                        if event.id or event.event == "reset":
                            reader.last_id = event.id or None
                        if event.event == "item":
                            reader.seen.append(int(json.loads(event.data)["headline"].split()[-1]))
                        if stop.is_set():
                            return
            except (httpx.HTTPError, OSError):
                pass
            await asyncio.sleep(0.3)  # the retry: the server told us


async def stop_all(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    stop.set()
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def publish(
    url: str, token: str, count: int, rate: float, acked: list[int], refused: list[httpx.Response]
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, timeout=5, headers=headers) as client:
        start = time.monotonic()
        for n in range(count):
            await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
            try:
                r = await client.post(
                    "/channels/en/items", json={"headline": f"seq {n}", "ttl": "10m"}
                )
            except httpx.HTTPError:
                continue
            if r.status_code == 201:
                acked.append(n)
            else:
                r.extensions["seq"] = n
                refused.append(r)
