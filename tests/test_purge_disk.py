"""Purge down to the disk: after a purge the text leaves Redis's append-only file, through at
most one ``BGREWRITEAOF`` per ``TICKER_PURGE_REWRITE_S`` across processes, and nothing is
asked of a Redis without AOF. Each test starts its own Redis (AOF on or off) and reads
its data folder byte by byte."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from pydantic import SecretStr

from tests.helpers import free_port, make_token, ops_headers, serve_app, stop_processes, wait_until
from ticker.domain.models import ItemIn
from ticker.newsroom.aof import AofRewrites
from ticker.newsroom.desk import Desk
from ticker.server.embedded import find_redis_server
from ticker.settings import Settings
from ticker.store import Store

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


@dataclass
class OwnRedis:
    url: str
    folder: Path
    client: redis.Redis

    def files_holding(self, text: str) -> list[str]:
        """Every file under the data folder (AOF parts, manifest, RDB) holding ``text``."""
        needle = text.encode()
        found = []
        for path in self.folder.rglob("*"):
            try:
                if path.is_file() and needle in path.read_bytes():
                    found.append(path.name)
            except FileNotFoundError:  # deleted by Redis as we read
                continue
        return found

    def persistence(self) -> dict[str, Any]:
        return dict(self.client.info("persistence"))

    def rewrites_asked(self) -> int:
        stats = self.client.info("commandstats").get("cmdstat_bgrewriteaof", {})
        return int(stats.get("calls", 0))

    def rewrite_finished(self, count: int) -> bool:
        info = self.persistence()
        return int(info["aof_rewrites"]) >= count and not info["aof_rewrite_in_progress"]


def _start(folder: Path, *, aof: bool) -> Iterator[OwnRedis]:
    binary = find_redis_server()
    if binary is None:
        pytest.skip("no redis-server installed: these tests start their own")
    port = free_port()
    data = folder / "redis"
    data.mkdir()
    proc = subprocess.Popen(
        [
            binary,
            *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(data)),
            *("--appendonly", "yes" if aof else "no", "--appendfsync", "always"),
            # No RDB snapshots, and RDB parts written uncompressed, so that text in a
            # file is found by a plain byte search (the check below must be able to fail).
            *("--save", "", "--rdbcompression", "no", "--logfile", str(folder / "redis.log")),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, decode_responses=True, socket_timeout=5)
    try:
        wait_until(lambda: _pings(client), timeout=10)
        yield OwnRedis(f"redis://127.0.0.1:{port}/0", data, client)
    finally:
        client.close()
        stop_processes([proc])


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    yield from _start(tmp_path, aof=True)


@pytest.fixture
def plain_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    yield from _start(tmp_path, aof=False)


def _settings(own: OwnRedis, tmp_path: Path, **values: Any) -> Settings:
    return Settings(
        redis_url=SecretStr(own.url),
        key_prefix=f"tkdisk-{uuid.uuid4().hex[:8]}",
        state_dir=tmp_path / "state",
        write_rate_per_minute=60_000,
        **values,
    )


async def _until(predicate: Any, timeout: float) -> None:
    """``wait_until`` that lets the in-process server (and its sweeper) run meanwhile."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"not within {timeout}s"
        await asyncio.sleep(0.05)


def _at(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


async def test_a_purged_headline_leaves_the_append_only_file(
    aof_redis: OwnRedis, tmp_path: Path
) -> None:
    settings = _settings(aof_redis, tmp_path, purge_rewrite_s=30, sweep_interval_s=0.1)
    chief = make_token(settings, "chief", ["en"], role="chief")
    libel, keeper = (f"{word}-{uuid.uuid4().hex}" for word in ("Libel", "Keeper"))
    async with serve_app(settings) as (url, _):
        auth = {"Authorization": f"Bearer {chief}"}
        async with httpx.AsyncClient(base_url=url, headers=auth, timeout=10) as api:
            item = (await api.post("/channels/en/items", json={"headline": libel})).json()
            await api.patch(f"/channels/en/items/{item['uri']}", json={"source": libel})
            await api.post("/channels/en/items", json={"headline": keeper})
            assert aof_redis.files_holding(libel)  # on disk before (appendfsync always)
            before = time.time()
            r = await api.post(f"/channels/en/items/{item['uri']}/purge", json={"reason": "x"})
            assert r.status_code == 200, r.text
            disk = r.json()["disk"]
            assert disk["aof"] == "on" and before - 1 <= _at(disk["rewrite_due_at"]) <= time.time()

            # The sweeper asks within a round; the rewrite runs; Redis deletes the old parts.
            await _until(lambda: aof_redis.rewrite_finished(1), timeout=15)
            await _until(lambda: not aof_redis.files_holding(libel), timeout=15)
            assert aof_redis.files_holding(keeper)  # the search still sees text
            assert aof_redis.rewrites_asked() == 1

            stats = (await api.get("/stats", headers=ops_headers(settings))).json()["_disk"]
        env = {"TICKER_URL": url, "TICKER_TOKEN": chief, "PATH": "/usr/bin:/bin"}
        cli = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "ticker", "stats"],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert stats["aof"] == "on" and stats["purges_waiting"] == 0
    assert stats["rewrite_due_at"] is None and stats["last_rewrite_status"] == "ok"
    assert before - 1 <= _at(stats["rewrite_asked_at"]) <= time.time()
    assert cli.returncode == 0, cli.stderr
    (disk_line,) = [line for line in cli.stdout.splitlines() if line.startswith("disk\t")]
    assert re.fullmatch(r"disk\ton\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\tok\t0\t-", disk_line), (
        disk_line
    )


async def test_purges_share_one_rewrite_per_interval_across_processes(
    aof_redis: OwnRedis, tmp_path: Path
) -> None:
    settings = _settings(aof_redis, tmp_path, purge_rewrite_s=1.0)
    one, two = (Store(aof_redis.url, prefix=settings.key_prefix) for _ in range(2))
    first, second = AofRewrites(one, settings), AofRewrites(two, settings)
    try:
        assert (await first.after_purge())["aof"] == "on"
        assert await first.step() is True
        # A purge in the same interval waits for the lock's end, in every process.
        due = _at((await second.after_purge())["rewrite_due_at"])
        assert time.time() + 0.5 <= due <= time.time() + 1.0
        assert [await second.step(), await first.step()] == [False, False]
        assert aof_redis.rewrites_asked() == 1
        wait_until(lambda: time.time() >= due and aof_redis.rewrite_finished(1), timeout=5)
        assert await second.step() is True
        assert await first.step() is False  # nothing waits any more
        assert aof_redis.rewrites_asked() == 2
    finally:
        await one.close()
        await two.close()


async def test_a_rewrite_running_at_purge_time_is_followed_by_another(
    aof_redis: OwnRedis, tmp_path: Path
) -> None:
    """A rewrite forked before the purge writes the text into its new file: the purge's
    rewrite waits for it to end, then runs, and only then is the text gone."""
    settings = _settings(aof_redis, tmp_path, purge_rewrite_s=30)
    store = Store(aof_redis.url, prefix=settings.key_prefix)
    desk, rewrites = Desk(store, settings), AofRewrites(store, settings)
    libel = f"Libel-{uuid.uuid4().hex}"
    try:
        item, _ = await desk.post("en", ItemIn(headline=libel), author="t")
        aof_redis.client.config_set("rdb-key-save-delay", 100_000)  # 0.1 s per key
        aof_redis.client.bgrewriteaof()
        await desk.purge("en", item.uri, reason="x", author="chief")
        assert await rewrites.step() is False  # one runs: not asked, still wanted
        assert aof_redis.rewrites_asked() == 1
        aof_redis.client.config_set("rdb-key-save-delay", 0)
        wait_until(lambda: aof_redis.rewrite_finished(1), timeout=15)
        assert aof_redis.files_holding(libel)  # the earlier rewrite kept it
        assert await rewrites.step() is True
        wait_until(lambda: aof_redis.rewrite_finished(2), timeout=15)
        wait_until(lambda: not aof_redis.files_holding(libel), timeout=15)
    finally:
        await store.close()


async def test_with_aof_off_nothing_is_asked(plain_redis: OwnRedis, tmp_path: Path) -> None:
    settings = _settings(plain_redis, tmp_path, purge_rewrite_s=0.1)
    store = Store(plain_redis.url, prefix=settings.key_prefix)
    desk, rewrites = Desk(store, settings), AofRewrites(store, settings)
    try:
        item, _ = await desk.post("en", ItemIn(headline="No AOF here"), author="t")
        _, disk = await desk.purge("en", item.uri, reason="x", author="chief")
        assert disk == {"aof": "off", "rewrite_due_at": None}
        assert await rewrites.step() is False
        assert plain_redis.rewrites_asked() == 0
        status = await rewrites.status()
        assert status["aof"] == "off" and status["purges_waiting"] == 0
        assert status["rewrite_asked_at"] is None
    finally:
        await store.close()


async def test_a_purge_leaves_no_bytes_in_the_stream_and_keeps_ids_and_groups(
    aof_redis: OwnRedis, tmp_path: Path
) -> None:
    """XDEL alone leaves a deleted entry's bytes in the stream (and so in every RDB file
    and AOF rewrite): the purge rebuilds the stream, keeping what other services rely on."""
    settings = _settings(aof_redis, tmp_path)
    store = Store(aof_redis.url, prefix=settings.key_prefix)
    desk = Desk(store, settings)
    libel = f"Libel-{uuid.uuid4().hex}"
    events = store.keys("en").events
    r = aof_redis.client
    try:
        item, _ = await desk.post("en", ItemIn(headline=libel), author="t")
        other, _ = await desk.post("en", ItemIn(headline="Other"), author="t")
        r.xgroup_create(events, "service", "0")
        r.xreadgroup("service", "worker-1", {events: ">"}, count=2)  # both pending
        r.xgroup_createconsumer(events, "service", "worker-2")
        assert libel.encode() in _dump(r, events)
        await desk.purge("en", item.uri, reason="x", author="chief")

        assert libel.encode() not in _dump(r, events)  # uncompressed: the search can see
        ids = [entry_id for entry_id, _ in r.xrange(events) or []]
        assert ids[0] == other.id and len(ids) == 2  # the other item, then the notice
        assert r.xinfo_stream(events)["entries-added"] == 3
        (group,) = r.xinfo_groups(events)
        assert group["last-delivered-id"] == other.id and group["entries-read"] == 2
        consumers = {c["name"]: c["pending"] for c in r.xinfo_consumers(events, "service")}
        assert consumers == {"worker-1": 1, "worker-2": 0}  # the purged entry left the PEL
        (pending,) = r.xpending_range(events, "service", "-", "+", 10)
        assert pending["message_id"] == other.id and pending["times_delivered"] == 1
    finally:
        await store.close()


def _dump(client: redis.Redis, key: str) -> bytes:
    raw = redis.Redis(connection_pool=client.connection_pool).execute_command(
        "DUMP", key, NEVER_DECODE=True
    )
    return bytes(raw or b"")
