"""Faults around ticker processes: SIGTERM with 1,000 open streams, a reader that stops
reading, a reply lost after the write, and a Redis connection that goes mute (half-open).
One of two processes killed under readers: test_failover.py."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.faults.followers import Follower, follow
from tests.faults.proxy import Proxy
from tests.helpers import TickerProcess, metric_readers, sigterm_and_time
from tests.redis_data import big_entry
from tests.sockets import open_streams
from tests.sse import start_reader
from ticker.cli.client import Client
from ticker.settings import Settings

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(150)]


def test_sigterm_with_a_thousand_open_streams_exits_within_ten_seconds(
    ticker_server: TickerProcess,
) -> None:
    socks = open_streams(ticker_server.port, 1000)
    elapsed = sigterm_and_time(ticker_server)
    print(f"exit after SIGTERM with 1000 open streams: {elapsed:.2f}s")
    assert elapsed < 10
    for s in socks:
        s.close()


@pytest.mark.parametrize(
    "ticker_server_env", [{"TICKER_SEND_TIMEOUT_S": "2", "TICKER_SUBSCRIBER_BUFFER": "100000"}]
)
async def test_a_reader_that_stops_reading_is_cut_off_and_others_keep_up(
    ticker_server: TickerProcess, settings: Settings
) -> None:
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", ticker_server.port))
    stalled.sendall(b"GET /channels/en/events HTTP/1.1\r\nHost: x\r\n\r\n")
    fast = start_reader(f"{ticker_server.url}/channels/en/events")
    try:
        await fast.wait_for(lambda r: r.status == 200)
        assert metric_readers(ticker_server) == 2
        # Large entries straight into the stream fill the stalled socket quickly.
        assert settings.redis_url is not None
        client = redis.Redis.from_url(settings.redis_url.get_secret_value())
        for n in range(400):
            client.xadd(f"{settings.key_prefix}:{{en}}:events", big_entry(n))
        client.close()
        await fast.wait_for(lambda r: len(r.events) == 400, timeout=30)
        # The send timeout (2 s here, 30 s by default) ended the stalled reader's stream;
        # the buffer cap (100,000 events here) never came into it.
        started = time.monotonic()
        while metric_readers(ticker_server) > 1 and time.monotonic() - started < 10:
            await asyncio.sleep(0.2)
        assert metric_readers(ticker_server) == 1
    finally:
        await fast.close()
        stalled.close()


async def test_a_reply_lost_after_the_write_does_not_publish_twice(
    ticker_server: TickerProcess, settings: Settings
) -> None:
    async with Proxy(ticker_server.port) as proxy:
        proxy.drop_replies = 1
        client = Client(f"http://127.0.0.1:{proxy.port}", ticker_server.token)
        try:
            item: Any = await asyncio.to_thread(
                client.request, "POST", "/channels/en/items", json={"headline": "once"}
            )
        finally:
            client.close()
    assert item["headline"] == "once"
    assert settings.redis_url is not None
    r = redis.Redis.from_url(settings.redis_url.get_secret_value())
    assert r.xlen(f"{settings.key_prefix}:{{en}}:events") == 1
    r.close()


async def test_a_mute_redis_connection_is_noticed_and_recovered(
    settings: Settings, tmp_path: Path
) -> None:
    from tests.helpers import make_token

    assert settings.redis_url is not None
    url = settings.redis_url.get_secret_value()
    if not url.startswith("redis://"):
        pytest.skip("the mute-connection proxy needs Redis over TCP")
    port = int(url.split(":")[2].split("/")[0])
    async with Proxy(port) as proxy:
        env = {
            "TICKER_REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0",
            "TICKER_KEY_PREFIX": settings.key_prefix,
            "TICKER_STATE_DIR": str(tmp_path / "state"),
            "TICKER_READ_BLOCK_MS": "1000",
            "TICKER_HEARTBEAT_S": "1",
            "TICKER_WRITE_RATE_PER_MINUTE": "60000",
        }
        proc = TickerProcess(env, log=tmp_path / "mute.log")
        proc.token = make_token(settings, "mute", ["*"])
        await asyncio.to_thread(proc.start)
        stop = asyncio.Event()
        reader = Follower()
        task = asyncio.create_task(follow(f"{proc.url}/channels/en/events", reader, stop))
        try:
            # The channel's reader is up once a stream has started (a freeze before that
            # tests a reader that never started, not one that goes mute).
            deadline = time.monotonic() + 10
            while 200 not in reader.statuses:
                assert time.monotonic() < deadline, reader.statuses
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
            proxy.frozen.set()  # Redis still "connected", but nothing comes back
            await asyncio.sleep(8)
            proxy.frozen.clear()
            started = time.monotonic()
            item: dict[str, Any] = {}
            while not item and time.monotonic() - started < 30:
                with contextlib.suppress(AssertionError, httpx.HTTPError):
                    item = await asyncio.to_thread(proc.post, "en", headline="after 1")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and 1 not in reader.seen:
                await asyncio.sleep(0.1)
            assert reader.seen == [1]
            metrics = (await asyncio.to_thread(proc.ops_get, "/metrics")).text
            assert (
                'ticker_redis_reconnects_total{channel="en"} 1.0' in metrics
                or 'ticker_redis_reconnects_total{channel="en"} 2.0' in metrics
            )
            assert reader.statuses == {200}
        finally:
            stop.set()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await asyncio.to_thread(proc.stop)
