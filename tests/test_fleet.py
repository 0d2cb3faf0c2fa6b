"""Several processes, one service: /metrics and /stats answer for all of them, whichever
process gets the request; a process that dies leaves the fleet by itself."""

from __future__ import annotations

import json
import selectors
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import run, server_env
from tests.helpers import TickerProcess, metric_samples, wait_until
from tests.redis_data import rdb
from tests.sockets import open_streams
from ticker import __version__
from ticker.settings import Settings

pytestmark = pytest.mark.own_server

# Short, so a dead process leaves within a test's time (the TTL is three intervals).
FLEET_ENV = {"TICKER_FLEET_REPORT_S": "0.3"}


@pytest.fixture
def ticker_server_env() -> dict[str, str]:
    return FLEET_ENV


def _stats(proc: TickerProcess) -> dict[str, Any]:
    return dict(proc.ops_get("/stats").json())


def _reported(settings: Settings) -> list[int]:
    """Each process's readers of ``en`` in its last report, as Redis holds them (the
    fleet's keys, store/fleet.py)."""
    r = rdb(settings)
    base = f"{settings.key_prefix}:{{fleet}}"
    records = [r.get(f"{base}:proc:{m.decode()}") for m in r.zrange(f"{base}:procs", 0, -1)]
    return [json.loads(rec)["readers"]["en"] for rec in records if rec]


def _counters(text: str) -> dict[str, float]:
    return {
        name: value
        for name, value in metric_samples(text).items()
        if name.split("{")[0].endswith(("_total", "_count", "_sum", "_bucket"))
    }


class Readers:
    """Raw SSE streams read in a thread, as a browser would: a reader that never read would
    be cut off once its buffers filled, which is not what this file tests."""

    def __init__(self, socks: list[socket.socket]) -> None:
        self._socks = socks
        self._got = [bytearray() for _ in socks]
        self._ended: dict[int, float] = {}
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with selectors.DefaultSelector() as sel:
            for i, sock in enumerate(self._socks):
                sock.setblocking(False)
                sel.register(sock, selectors.EVENT_READ, i)
            while not self._stop.is_set() and sel.get_map():
                for key, _ in sel.select(0.1):
                    i = key.data
                    try:
                        part = self._socks[i].recv(65536)
                    except OSError:
                        part = b""
                    if part:
                        self._got[i] += part
                    else:
                        sel.unregister(self._socks[i])
                        self._ended[i] = round(time.monotonic() - self._started, 3)

    def received(self) -> list[bytes]:
        return [bytes(got) for got in self._got]

    def ended(self) -> list[str]:
        """Which streams ended, when (seconds after they opened), and their last bytes."""
        return [
            f"stream {i} ended at {at}s after {bytes(self._got[i][-200:])!r}"
            for i, at in sorted(self._ended.items())
        ]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for sock in self._socks:
            sock.close()


def _second_server(first: TickerProcess, tmp_path: Path) -> TickerProcess:
    env = {k: v for k, v in first.env.items() if k.startswith("TICKER_")}
    env["TICKER_STATE_DIR"] = str(tmp_path / "second-state")
    proc = TickerProcess(env, log=tmp_path / "second.log")
    proc.token = first.token
    return proc


@pytest.mark.timeout(120)
def test_workers_answer_the_same_growing_totals_under_load(
    settings: Settings, tmp_path: Path, ticker_server: TickerProcess
) -> None:
    ticker_server.stop()
    ticker_server.args = ("--workers", "2")
    # Reports every second (their TTL is 3 s): a worker that a loaded CI host holds off
    # the CPU for a second still counts its readers, as it would in production (5 s).
    ticker_server.env["TICKER_FLEET_REPORT_S"] = "1"
    ticker_server.start()
    streams = open_streams(ticker_server.port, 8)
    readers = Readers(streams)
    posted = 0
    stop = threading.Event()

    def publish() -> None:
        nonlocal posted
        while not stop.is_set():
            ticker_server.post("en", headline=f"Load {posted}")
            posted += 1

    publisher = threading.Thread(target=publish)
    try:
        # Both workers report, and every one of the 8 readers is counted once.
        # A process counts itself live and the others by their last report: wait for
        # both reports to count the 8 readers, and every answer from here on is 8.
        wait_until(lambda: len(got := _reported(settings)) == 2 and sum(got) == 8)
        publisher.start()
        previous: dict[str, float] = {}
        for _ in range(12):
            counters = _counters(ticker_server.ops_get("/metrics").text)
            for name, value in previous.items():
                assert counters[name] >= value, f"{name} went from {value} to {counters[name]}"
            previous = counters
            stats = _stats(ticker_server)
            assert stats["en"]["readers"] == 8, (stats, readers.ended())
            assert stats["_fleet"]["readers"] == 8
            assert sum(p["readers"] for p in stats["_fleet"]["processes"]) == 8
        stop.set()
        publisher.join(10)
        # Every reader, on either worker, was live all along and got every item.
        last = f"Load {posted - 1}".encode()
        wait_until(lambda: all(last in got for got in readers.received()))
        assert readers.ended() == []
        published = 'ticker_events_published_total{channel="en",type="item"}'
        wait_until(
            lambda: metric_samples(ticker_server.ops_get("/metrics").text)[published] == posted
        )
        # One build_info series for the service, and no process metrics: they would
        # describe whichever worker answered (metrics.py).
        samples = metric_samples(ticker_server.ops_get("/metrics").text)
        assert [n for n in samples if n.startswith("ticker_build_info")] == [
            f'ticker_build_info{{version="{__version__}"}}'
        ]
        assert not [n for n in samples if n.startswith("process_")]
    finally:
        stop.set()
        readers.close()
    assert posted > 0


@pytest.mark.timeout(90)
def test_a_killed_process_leaves_ticker_stats(
    settings: Settings, tmp_path: Path, ticker_server: TickerProcess
) -> None:
    second = _second_server(ticker_server, tmp_path)
    second.start()
    try:
        pids = {ticker_server.proc.pid, second.proc.pid}  # type: ignore[union-attr]
        env = server_env(ticker_server, tmp_path, TICKER_TOKEN=ticker_server.ops_secret())

        def listed() -> set[int]:
            out = run(env, "stats", "--json")
            assert out.returncode == 0, out.stderr
            return {p["pid"] for p in json.loads(out.stdout)["_fleet"]["processes"]}

        wait_until(lambda: listed() == pids)
        table = run(env, "stats")
        assert table.returncode == 0, table.stderr
        # Into a pipe: a "process" line per process, with its host and pid.
        lines = [line.split("\t") for line in table.stdout.splitlines()]
        procs = [line for line in lines if line[0] == "process"]
        assert {int(p[3]) for p in procs} == pids
        assert all(p[2] == socket.gethostname() for p in procs)
        killed = second.proc.pid  # type: ignore[union-attr]
        second.stop(signal.SIGKILL)  # no goodbye: only the TTL removes it
        wait_until(lambda: killed not in listed())
        assert listed() == {ticker_server.proc.pid}  # type: ignore[union-attr]
    finally:
        second.stop()


@pytest.mark.timeout(90)
def test_demo_posts_are_counted_by_the_workers(
    settings: Settings, tmp_path: Path, ticker_server: TickerProcess
) -> None:
    ticker_server.stop()
    ticker_server.args = ("--workers", "2", "--demo")
    ticker_server.start()

    def demo_posts() -> float:
        text = ticker_server.ops_get("/metrics").text
        samples = metric_samples(text)
        return sum(
            samples[f'ticker_events_published_total{{channel="{c.name}",type="item"}}']
            for c in settings.channels
        )

    wait_until(lambda: demo_posts() >= 1, timeout=20)  # the demo posts at once, then every 20 s
