"""A primary, a replica and one sentinel, started on loopback ports for a fault test."""

from __future__ import annotations

import subprocess
from pathlib import Path

import redis

from tests.helpers import free_port, stop_processes, wait_until

SERVICE = "tkmain"


class SentinelSet:
    def __init__(self, folder: Path, binary: str) -> None:
        self.folder = folder
        self.binary = binary
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.primary, self.replica, self.sentinel = free_port(), free_port(), free_port()
        # Where the replica connects to follow the primary: a proxy's port puts a link
        # the test can hold back between them (tests/faults/proxy.py).
        self.upstream = self.primary
        self.down_after_ms = 2000

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
            str(self.upstream),
        )
        # The replica has the primary's data (a failover before that would lose it all).
        wait_until(self._replica_in_sync, timeout=20, interval=0.1)
        # Started once the replica follows: the sentinel's first INFO of the primary then
        # names it (the next one comes 10 s later).
        conf = self.folder / "sentinel.conf"
        conf.write_text(
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary} 1\n"
            f"sentinel down-after-milliseconds {SERVICE} {self.down_after_ms}\n"
            f"sentinel failover-timeout {SERVICE} 10000\n"
        )
        self._start(
            "sentinel", self.sentinel, str(conf), "--sentinel", "--port", str(self.sentinel)
        )
        # The sentinel knows the replica, so it has somewhere to fail over to.
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

    def crash_primary(self) -> None:
        """The primary dies at once (SIGKILL); the sentinel promotes the replica."""
        old = self.primary_port()
        self.procs[old].kill()
        self.procs[old].wait()

        def promoted() -> bool:
            addr = self._ask("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
            return isinstance(addr, list | tuple) and int(addr[1]) != old

        wait_until(promoted, timeout=20, interval=0.1)

    def stop(self) -> None:
        stop_processes(self.procs.values())
