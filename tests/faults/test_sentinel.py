"""Redis Sentinel: a primary, a replica and one sentinel started here on loopback ports;
ticker on ``redis+sentinel://host:port/service``. A reader gets every item posted before
and after a failover (``SENTINEL FAILOVER``), in order, with no reconnect of its own."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from pydantic import SecretStr

from tests.helpers import free_port, make_token, serve_app, start_reader, stop_processes, wait_until
from ticker.embedded import find_redis_server
from ticker.settings import Settings

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

SERVICE = "tkmain"


class SentinelSet:
    def __init__(self, folder: Path, binary: str) -> None:
        self.folder = folder
        self.binary = binary
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.primary, self.replica, self.sentinel = free_port(), free_port(), free_port()

    def _start(self, name: str, port: int, *args: str) -> None:
        data = self.folder / name
        data.mkdir()
        self.procs[port] = subprocess.Popen(
            [
                self.binary,
                *args,
                "--bind",
                "127.0.0.1",
                "--dir",
                str(data),
                "--logfile",
                str(data / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start(self) -> None:
        # No delay before the first (diskless) sync: Valkey and Redis wait 5 s by default.
        self._start(
            "primary",
            self.primary,
            *("--port", str(self.primary), "--save", "", "--appendonly", "no"),
            *("--repl-diskless-sync-delay", "0"),
        )
        self._start(
            "replica",
            self.replica,
            "--port",
            str(self.replica),
            "--save",
            "",
            "--appendonly",
            "no",
            "--replicaof",
            "127.0.0.1",
            str(self.primary),
        )
        conf = self.folder / "sentinel.conf"
        conf.write_text(
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary} 1\n"
            f"sentinel down-after-milliseconds {SERVICE} 2000\n"
            f"sentinel failover-timeout {SERVICE} 10000\n"
        )
        self._start(
            "sentinel", self.sentinel, str(conf), "--sentinel", "--port", str(self.sentinel)
        )
        # The replica has the primary's data (a failover before that would lose it all).
        wait_until(self._replica_in_sync, timeout=20, interval=0.1)
        # The sentinel knows the replica (it learns it from the primary's INFO, every 10 s
        # at first), so it has somewhere to fail over to.
        wait_until(lambda: self._ask("SENTINEL", "REPLICAS", SERVICE), timeout=20, interval=0.2)

    def _replica_in_sync(self) -> bool:
        try:
            info = redis.Redis(port=self.replica, socket_timeout=2).info("replication")
        except redis.RedisError:
            return False
        return info.get("master_link_status") == "up"

    def _ask(self, *command: str) -> object:
        try:
            return redis.Redis(
                port=self.sentinel, decode_responses=True, socket_timeout=2
            ).execute_command(*command)
        except redis.RedisError:
            return None

    def primary_port(self) -> int:
        addr = self._ask("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
        assert isinstance(addr, list | tuple), addr
        return int(addr[1])

    def failover(self) -> None:
        """The replica takes over, then the old primary dies: no connection to it lasts."""
        old = self.primary_port()
        # Every acknowledged write is on the replica before it takes over.
        assert redis.Redis(port=old).execute_command("WAIT", 1, 5000) == 1
        assert self._ask("SENTINEL", "FAILOVER", SERVICE)
        wait_until(lambda: self.primary_port() != old, timeout=20, interval=0.1)
        self.procs[old].kill()
        self.procs[old].wait()

    def stop(self) -> None:
        stop_processes(self.procs.values())


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelSet]:
    binary = find_redis_server()
    if binary is None:
        pytest.skip("no redis-server installed: the Sentinel test starts its own")
    group = SentinelSet(tmp_path, binary)
    try:
        group.start()
        yield group
    finally:
        group.stop()


async def test_a_reader_gets_every_item_across_a_sentinel_failover(
    sentinels: SentinelSet, tmp_path: Path
) -> None:
    url = f"redis+sentinel://127.0.0.1:{sentinels.sentinel}/{SERVICE}"
    settings = Settings(
        redis_url=SecretStr(url),
        key_prefix="tksent",
        state_dir=tmp_path / "s",
        heartbeat_s=1.0,
        read_block_ms=1000,
        write_rate_per_minute=60_000,
    )
    token = await asyncio.to_thread(make_token, settings, "editor", ["*"])
    async with serve_app(settings) as (base, _app):
        import httpx

        async with httpx.AsyncClient(base_url=base, timeout=10) as http:

            async def post(text: str) -> None:
                deadline = time.monotonic() + 20
                while True:  # a 503 while the primary changes; the same key on a retry
                    r = await http.post(
                        "/channels/en/items",
                        json={"headline": text},
                        headers={
                            "Authorization": f"Bearer {token}",
                            "Idempotency-Key": text.replace(" ", "-"),
                        },
                    )
                    if r.status_code == 201 or time.monotonic() > deadline:
                        assert r.status_code == 201, r.text
                        return
                    assert r.status_code == 503, r.text
                    await asyncio.sleep(0.2)

            reader = start_reader(f"{base}/channels/en/events")
            try:
                await reader.wait_for(lambda r: r.status == 200)
                sent = [f"item {n}" for n in range(6)]
                for text in sent[:3]:
                    await post(text)
                await reader.wait_for(lambda r: len(r.of("item")) == 3)
                await asyncio.to_thread(sentinels.failover)
                for text in sent[3:]:
                    await post(text)
                await reader.wait_for(lambda r: len(r.of("item")) == 6, timeout=20)
                assert [i["headline"] for i in reader.of("item")] == sent
                assert (await http.get("/readyz")).status_code == 200
            finally:
                await reader.close()
