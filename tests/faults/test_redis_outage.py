"""Redis killed under load, and Redis back without its data: the promise is that every item
acknowledged with 201 reaches every connected reader exactly once, in order, and that a
reader whose position is gone gets ``reset``, never a silent gap.

These tests start their own redis-server (AOF with ``appendfsync always``, the setting
under which an acknowledged write survives SIGKILL) and a real ticker process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.faults.followers import Follower, follow, publish, stop_all
from tests.helpers import TickerProcess, free_port, make_token, wait_until
from ticker.server.embedded import find_redis_server
from ticker.settings import Settings

pytestmark = pytest.mark.timeout(120)

READERS = 200


class RedisServer:
    """A redis-server we can SIGKILL and start again on the same port."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = find_redis_server()
        assert binary, "no redis-server"
        self.data.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.data),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        def up() -> bool:
            try:
                return bool(redis.Redis(port=self.port, socket_timeout=1).ping())
            except redis.RedisError:
                return False

        wait_until(up, timeout=10)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def wipe(self) -> None:
        for path in self.data.rglob("*"):
            if path.is_file():
                path.unlink()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def ticker(redis_server: RedisServer, tmp_path: Path) -> Iterator[TickerProcess]:
    env = {
        "TICKER_REDIS_URL": redis_server.url,
        "TICKER_KEY_PREFIX": "faults",
        "TICKER_STATE_DIR": str(tmp_path / "state"),
        "TICKER_HEARTBEAT_S": "1",
        "TICKER_RETRY_MS": "300",
        "TICKER_READ_BLOCK_MS": "1000",
        "TICKER_WRITE_RATE_PER_MINUTE": "60000",
    }
    proc = TickerProcess(env, log=tmp_path / "ticker.log")
    proc.token = _token(redis_server.url)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def _token(url: str) -> str:
    from pydantic import SecretStr

    settings = Settings(redis_url=SecretStr(url), key_prefix="faults")
    return make_token(settings, "faults", ["*"])


@pytest.mark.anyio
async def test_redis_killed_for_five_seconds_loses_no_acknowledged_item(
    redis_server: RedisServer, ticker: TickerProcess
) -> None:
    url = f"{ticker.url}/channels/en/events"
    stop = asyncio.Event()
    readers = [Follower() for _ in range(READERS)]
    tasks = [asyncio.create_task(follow(url, r, stop)) for r in readers]
    acked: list[int] = []
    refused: list[httpx.Response] = []
    try:
        await asyncio.sleep(2)
        publisher = asyncio.create_task(publish(ticker.url, ticker.token, 200, 20, acked, refused))
        await asyncio.sleep(3)
        await asyncio.to_thread(redis_server.kill)
        await asyncio.sleep(1)
        async with httpx.AsyncClient() as client:
            ready = await client.get(f"{ticker.url}/readyz")
        assert ready.status_code == 503
        await asyncio.sleep(4)
        await asyncio.to_thread(redis_server.start)
        await publisher
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(len(r.seen) < len(acked) for r in readers):
            await asyncio.sleep(0.2)
    finally:
        await stop_all(stop, tasks)
    # Writes during the outage were refused with 503 + Retry-After and a JSON error.
    assert refused, "the outage refused no write"
    assert {r.status_code for r in refused} == {503}
    assert all(
        r.headers.get("retry-after") and r.json()["error"] == "store_unavailable" for r in refused
    )
    # Items were acknowledged before the outage and again after Redis came back.
    assert min(acked) < min(r.extensions["seq"] for r in refused)
    assert max(acked) > max(r.extensions["seq"] for r in refused)
    for reader in readers:
        assert reader.statuses == {200}
        assert reader.resets == 0
        # Every acknowledged item, once, in order. At most one more: the POST in flight
        # when Redis died can have been written with its reply lost (an ambiguous 503;
        # clients retry such writes with an Idempotency-Key).
        assert reader.seen == sorted(set(reader.seen))
        assert set(acked) <= set(reader.seen)
        extra = set(reader.seen) - set(acked)
        assert len(extra) <= 1, extra


@pytest.mark.anyio
async def test_redis_back_without_its_data_sends_readers_a_reset(
    redis_server: RedisServer, ticker: TickerProcess
) -> None:
    url = f"{ticker.url}/channels/en/events"
    stop = asyncio.Event()
    readers = [Follower() for _ in range(20)]
    tasks = [asyncio.create_task(follow(url, r, stop)) for r in readers]
    try:
        await asyncio.sleep(1)
        for n in range(3):
            ticker.post("en", headline=f"before {n}")
        await asyncio.sleep(1)
        assert all(len(r.seen) == 3 for r in readers)
        await asyncio.to_thread(redis_server.kill)
        redis_server.wipe()
        await asyncio.to_thread(redis_server.start)
        # The token lived in the lost data too: make a new one.
        ticker.token = _token(redis_server.url)
        await asyncio.sleep(0.5)
        ticker.post("en", headline="after 99")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not all(
            r.resets and r.seen[-1:] == [99] for r in readers
        ):
            await asyncio.sleep(0.2)
    finally:
        await stop_all(stop, tasks)
    for reader in readers:
        assert reader.resets >= 1, "a reader kept stale items without a reset"
        assert reader.seen[-1] == 99
        assert reader.statuses == {200}


def _log_lines(ticker: TickerProcess) -> list[dict[str, object]]:
    assert ticker.log is not None
    lines = []
    for line in ticker.log.read_text().splitlines():
        with contextlib.suppress(ValueError):
            lines.append(json.loads(line))
    return lines


@pytest.mark.anyio
async def test_a_stream_that_cannot_start_while_redis_is_down_gets_a_503(
    redis_server: RedisServer, ticker: TickerProcess
) -> None:
    item = ticker.post("en", headline="before the outage")
    async with (
        httpx.AsyncClient(base_url=ticker.url, timeout=httpx.Timeout(15, read=15)) as c,
        c.stream("GET", "/channels/en/events") as live,
    ):
        assert live.status_code == 200  # the channel's reader runs (and stays)
        await asyncio.to_thread(redis_server.kill)
        try:
            # A resume on a channel with a running reader, and one on a channel without:
            # each a clean refusal before the head, never an aborted 200. (A fresh stream
            # on a channel with a reader is served from its snapshot: 200, live later.)
            for channel in ("en", "ar"):
                r = await c.get(
                    f"/channels/{channel}/events", headers={"Last-Event-ID": item["id"]}
                )
                assert r.status_code == 503, (channel, r.status_code, r.text[:200])
                assert r.headers["retry-after"]
                assert r.json()["error"] == "store_unavailable"
        finally:
            await asyncio.to_thread(redis_server.start)
    assert "Traceback" not in ticker.log.read_text()  # type: ignore[union-attr]


@pytest.mark.anyio
@pytest.mark.timeout(90)
async def test_once_ready_again_after_a_redis_restart_no_request_gets_a_503(
    redis_server: RedisServer, ticker: TickerProcess
) -> None:
    ticker.env["TICKER_WRITE_BURST"] = "1000"  # 48 writes at once, three times
    ticker.restart()
    headers = {"Authorization": f"Bearer {ticker.token}"}
    ops = {"Authorization": f"Bearer {ticker.ops_secret()}"}
    metrics_line = 'ticker_redis_reconnects_total{channel="en"}'

    async def burst(client: httpx.AsyncClient, label: str) -> list[int]:
        replies = await asyncio.gather(
            *(
                client.post("/channels/en/items", json={"headline": f"{label} {n}"})
                for n in range(48)
            )
        )
        return [r.status_code for r in replies]

    async with (
        httpx.AsyncClient(
            base_url=ticker.url,
            timeout=15,
            headers=headers,
            limits=httpx.Limits(max_connections=100),
        ) as client,
        client.stream("GET", "/channels/en/events") as live,
    ):
        assert live.status_code == 200
        # 48 writes at once: the pool now holds dozens of connections to this Redis.
        assert set(await burst(client, "before")) == {201}
        killed_at = time.time()
        await asyncio.to_thread(redis_server.kill)
        await asyncio.sleep(3)
        restarted_at = time.time()
        await asyncio.to_thread(redis_server.start)
        while (await client.get("/readyz")).status_code != 200:
            await asyncio.sleep(0.1)
        statuses = await burst(client, "after")
        statuses.append((await client.get("/channels/en/items")).status_code)
        await asyncio.sleep(1.5)  # past the pool's health-check interval
        statuses += await burst(client, "later")
        statuses.append((await client.get("/channels/en/items")).status_code)
        assert statuses.count(503) == 0, statuses
        assert set(statuses) == {200, 201}
        # The reader retries with backoff (up to about 7 s): wait for its reconnection
        # (the series is there from start-up, at 0).
        deadline = time.monotonic() + 15
        while (
            f"{metrics_line} 1.0"
            not in (metrics := (await client.get("/metrics", headers=ops)).text)
            and time.monotonic() < deadline
        ):
            await asyncio.sleep(0.2)
    # One reconnection for the one reader, counted when it happened (not per attempt).
    assert f"{metrics_line} 1.0" in metrics, [m for m in metrics.splitlines() if "reconnects" in m]
    lines = _log_lines(ticker)

    def at(line: dict[str, object]) -> float:
        from datetime import datetime

        return datetime.fromisoformat(str(line["timestamp"]).replace("Z", "+00:00")).timestamp()

    back = [line for line in lines if "Redis is back" in str(line.get("message"))]
    assert back and all(at(line) >= restarted_at for line in back), back
    # Outage warnings: one per process per 10 s from the readers, and from the sweeper.
    outage = [
        line
        for line in lines
        if line.get("level") == "warning" and at(line) >= killed_at and at(line) < restarted_at + 1
    ]
    readers = [line for line in outage if line.get("logger") == "ticker.channel"]
    sweeper = [line for line in outage if line.get("logger") == "ticker.retention"]
    assert 1 <= len(readers) <= 1, readers
    assert len(sweeper) <= 1, sweeper
