"""The graceful drain of a real ``ticker serve``: on SIGTERM ``/readyz`` answers 503 for
``TICKER_DRAIN_S`` while everything else works, then the streams end with a last
``retry:`` spread over ``TICKER_RETRY_JITTER_MS`` and the process exits."""

from __future__ import annotations

import re
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import TickerProcess, wait_until
from tests.sockets import open_streams, read_until
from ticker.domain.frames import last_retry_frame
from ticker.settings import Settings

DRAIN_S = 2.0
RETRY_MS = 500  # tests/conftest.py's TICKER_RETRY_MS
JITTER_MS = 2000
EXIT_BOUND_S = 5.0  # after the drain: streams end, uvicorn shuts down, Redis client closes


def drain_env(**extra: str) -> dict[str, str]:
    return {"TICKER_DRAIN_S": str(DRAIN_S), "TICKER_RETRY_JITTER_MS": str(JITTER_MS), **extra}


def signal_server(proc: TickerProcess, sig: int = signal.SIGTERM) -> None:
    assert proc.proc is not None
    proc.proc.send_signal(sig)


def wait_exit(proc: TickerProcess, timeout: float) -> int:
    assert proc.proc is not None
    code = proc.proc.wait(timeout)
    proc.proc = None
    return code


def last_retries(socks: list[socket.socket]) -> list[int]:
    """Each stream's last ``retry:`` value, read to the server's close."""
    values = []
    for s in socks:
        s.settimeout(10)  # read_until leaves a short one
        received = b""
        while part := s.recv(65536):
            received += part
        s.close()
        found = re.findall(rb"retry: (\d+)\n\n", received)
        # Nothing but the chunked ending after it (the ASGI path is chunked).
        assert found and b"data:" not in received.rsplit(b"retry:", 1)[1], received[-80:]
        values.append(int(found[-1]))
    return values


def test_the_last_retry_is_spread_over_the_jitter() -> None:
    values = {int(last_retry_frame(500, 100)[7:-2]) for _ in range(300)}
    assert min(values) >= 500 and max(values) <= 600 and len(values) > 50
    assert last_retry_frame(500, 0) == b"retry: 500\n\n"


def test_the_drain_is_a_setting_that_may_be_zero() -> None:
    assert Settings(drain_s=0, retry_jitter_ms=0).drain_s == 0
    with pytest.raises(ValueError):
        Settings(drain_s=-1)
    with pytest.raises(ValueError):
        Settings(retry_jitter_ms=-1)


@pytest.mark.parametrize(
    "ticker_server_env",
    [drain_env(), drain_env(TICKER_DIRECT_WRITES="false")],
    ids=["native", "asgi"],
)
def test_during_the_drain_only_readyz_says_no_then_streams_end_with_spread_retries(
    ticker_server: TickerProcess,
) -> None:
    socks = open_streams(ticker_server.port, 8)
    for s in socks:
        assert read_until(s, b"retry: 500\n\n")  # the opening: the stream is registered
    signal_server(ticker_server)
    signalled = time.monotonic()
    with httpx.Client(base_url=ticker_server.url, timeout=5) as c:
        wait_until(lambda: c.get("/readyz").status_code == 503, timeout=DRAIN_S)
        assert c.get("/readyz").json()["error"] == "draining"
        assert c.get("/livez").status_code == 200
        assert c.get("/channels/en/items").status_code == 200
        fresh = open_streams(ticker_server.port, 1)  # a new stream still opens
        item = ticker_server.post("en", headline="Posted while draining")
        for s in (socks[0], fresh[0]):  # and live events still reach readers
            assert b"Posted while draining" in read_until(s, b"Posted while draining")
        assert item["headline"] == "Posted while draining"
    assert time.monotonic() - signalled < DRAIN_S, "the checks must run inside the drain"
    retries = last_retries(socks + fresh)
    ended = time.monotonic() - signalled
    assert ended >= DRAIN_S - 0.1, f"streams ended {ended:.2f}s after SIGTERM"
    assert all(RETRY_MS <= r <= RETRY_MS + JITTER_MS for r in retries), retries
    assert len(set(retries)) > 1, retries
    assert wait_exit(ticker_server, EXIT_BOUND_S) == 0
    took = time.monotonic() - signalled
    print(f"exit {took:.2f}s after SIGTERM with a {DRAIN_S}s drain")
    assert took < DRAIN_S + EXIT_BOUND_S


@pytest.mark.parametrize("ticker_server_env", [drain_env(TICKER_DRAIN_S="30")])
def test_a_second_signal_during_the_drain_stops_at_once(ticker_server: TickerProcess) -> None:
    socks = open_streams(ticker_server.port, 2)
    signal_server(ticker_server)
    wait_until(lambda: httpx.get(f"{ticker_server.url}/readyz").status_code == 503, timeout=5)
    started = time.monotonic()
    signal_server(ticker_server, signal.SIGINT)
    assert wait_exit(ticker_server, 10) == 0
    assert time.monotonic() - started < 10
    assert all(RETRY_MS <= r <= RETRY_MS + JITTER_MS for r in last_retries(socks))


@pytest.mark.parametrize("ticker_server_env", [drain_env(TICKER_DRAIN_S="30")])
def test_ctrl_c_at_a_terminal_stops_at_once_without_the_drain(
    ticker_server: TickerProcess,
) -> None:
    socks = open_streams(ticker_server.port, 2)
    started = time.monotonic()
    signal_server(ticker_server, signal.SIGINT)
    assert wait_exit(ticker_server, 10) == 0
    assert time.monotonic() - started < 5  # the drain here is 30 s
    assert all(RETRY_MS <= r <= RETRY_MS + JITTER_MS for r in last_retries(socks))


@pytest.mark.parametrize("ticker_server_env", [{"TICKER_DRAIN_S": "0"}])
def test_with_no_drain_sigterm_ends_streams_at_once(ticker_server: TickerProcess) -> None:
    socks = open_streams(ticker_server.port, 3)
    started = time.monotonic()
    signal_server(ticker_server)
    assert last_retries(socks) == [RETRY_MS] * 3  # jitter 0 (QUICK_STOP)
    assert wait_exit(ticker_server, 10) == 0
    assert time.monotonic() - started < 3


def test_every_worker_drains_under_workers(settings: Settings, tmp_path: Path) -> None:
    assert settings.redis_url is not None
    env = {
        "TICKER_REDIS_URL": settings.redis_url.get_secret_value(),
        "TICKER_KEY_PREFIX": settings.key_prefix,
        "TICKER_STATE_DIR": str(tmp_path / "state"),
        "TICKER_RETRY_MS": str(RETRY_MS),
        **drain_env(),
    }
    proc = TickerProcess(env, args=("--workers", "2"), log=tmp_path / "w2.log")
    proc.start()
    try:
        socks = open_streams(proc.port, 6)  # spread over both workers by the kernel
        signal_server(proc)
        signalled = time.monotonic()
        with httpx.Client(base_url=proc.url, timeout=5) as c:
            wait_until(lambda: c.get("/readyz").status_code == 503, timeout=DRAIN_S)
            # Every answer during the drain is 503, whichever worker takes it.
            assert {c.get("/readyz").status_code for _ in range(6)} == {503}
            assert c.get("/livez").status_code == 200
        retries = last_retries(socks)
        assert time.monotonic() - signalled >= DRAIN_S - 0.1
        assert all(RETRY_MS <= r <= RETRY_MS + JITTER_MS for r in retries), retries
        assert wait_exit(proc, EXIT_BOUND_S + 5) == 0
    finally:
        proc.stop()
