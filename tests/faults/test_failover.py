"""One of two ticker processes killed under 200 readers: each resumes on the other.
(Its own module, so the test suite runs it beside the other process faults.)"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.faults.followers import Follower, follow, publish, stop_all
from tests.helpers import TickerProcess

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(150)]


async def test_readers_of_a_killed_process_resume_on_the_other_without_loss(
    ticker_server: TickerProcess, tmp_path: Path
) -> None:
    other = TickerProcess(ticker_server.env, log=tmp_path / "other.log")
    other.token = ticker_server.token
    other.start()
    try:
        urls = [f"{p.url}/channels/en/events" for p in (ticker_server, other)]
        stop = asyncio.Event()
        readers = [Follower() for _ in range(200)]
        tasks = [
            asyncio.create_task(follow(urls if n % 2 == 0 else urls[::-1], r, stop))
            for n, r in enumerate(readers)
        ]
        acked: list[int] = []
        refused: list[httpx.Response] = []
        await asyncio.sleep(3)
        publisher = asyncio.create_task(publish(other.url, other.token, 60, 10, acked, refused))
        await asyncio.sleep(2)
        ticker_server.stop(signal.SIGKILL)  # half the readers lose their server
        await publisher
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(len(r.seen) < len(acked) for r in readers):
            await asyncio.sleep(0.2)
        await stop_all(stop, tasks)
        assert not refused and len(acked) == 60
        for reader in readers:
            assert reader.seen == acked  # none lost, none twice, in order
    finally:
        other.stop()
