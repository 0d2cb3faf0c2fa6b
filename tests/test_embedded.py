"""The private Redis: ``EmbeddedRedis`` on its own, and ``ticker serve`` with no
TICKER_REDIS_URL as someone trying ticker on a fresh machine runs it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.helpers import TickerProcess, wait_until
from ticker.server.embedded import EmbeddedError, EmbeddedRedis


@pytest.fixture
def state_dir() -> Iterator[Path]:
    """A short path, so the Redis socket fits in sun_path (a long one falls back to TCP)."""
    path = Path(tempfile.mkdtemp(prefix="tk-", dir="/tmp"))
    try:
        yield path / "state"
    finally:
        for pid in redis_pids(path):  # a failed test must not leave a server behind
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(path, ignore_errors=True)


def alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it counts as gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return fields[0] not in ("Z", "X")


def redis_pids(state_dir: Path) -> list[int]:
    """Live redis-server or valkey-server processes working in (or listening under)
    ``state_dir``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() not in ("redis-server", "valkey-server"):
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if (str(state_dir) in cmdline or cwd.startswith(str(state_dir))) and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5, decode_responses=True)


# -- EmbeddedRedis -------------------------------------------------------------------


def test_it_answers_on_a_private_unix_socket(state_dir: Path) -> None:
    with EmbeddedRedis(state_dir) as url:
        assert url == f"unix://{state_dir}/redis/redis.sock"
        c = client(url)
        try:
            assert c.ping() is True
        finally:
            c.close()
        # Only this user may reach the data and the socket.
        assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700


def test_data_survives_a_stop_and_start(state_dir: Path) -> None:
    embedded = EmbeddedRedis(state_dir)
    url = embedded.start()
    c = client(url)
    try:
        c.set("headline", "Rotterdam shooter arrested")
        c.xadd("events", {"type": "item"})
    finally:
        c.close()
    first_pid = embedded.pid
    embedded.stop()

    again = EmbeddedRedis(state_dir)
    try:
        c = client(again.start())
        try:
            assert c.get("headline") == "Rotterdam shooter arrested"
            assert c.xlen("events") == 1
        finally:
            c.close()
        assert again.pid != first_pid
    finally:
        again.stop()


def test_stop_leaves_no_process(state_dir: Path) -> None:
    embedded = EmbeddedRedis(state_dir)
    embedded.start()
    pid = embedded.pid
    assert pid is not None and alive(pid)
    embedded.stop()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert embedded.pid is None
    assert redis_pids(state_dir) == []
    embedded.stop()  # twice is harmless


def test_a_second_one_on_the_same_state_dir_is_refused(state_dir: Path) -> None:
    with EmbeddedRedis(state_dir) as url:
        second = EmbeddedRedis(state_dir)
        with pytest.raises(EmbeddedError, match="already using") as refused:
            second.start()
        assert str(state_dir) in str(refused.value)
        assert second.pid is None
        assert len(redis_pids(state_dir)) == 1
        c = client(url)  # the first one is untouched
        try:
            assert c.ping() is True
        finally:
            c.close()
    # Once the first is stopped, the folder is free again.
    with EmbeddedRedis(state_dir):
        pass


# -- ticker serve without TICKER_REDIS_URL --------------------------------------------


def fresh_env(state_dir: Path) -> dict[str, str]:
    """A machine where only TICKER_STATE_DIR is set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKER_")}
    env.update(TICKER_STATE_DIR=str(state_dir), COLUMNS="250", NO_COLOR="1")
    return env


def start_serve(state_dir: Path, log: Path, **env: str) -> TickerProcess:
    proc = TickerProcess({}, log=log)
    proc.env = {**fresh_env(state_dir), **env}  # TickerProcess adds to os.environ: not here
    proc.start(timeout=30)
    return proc


def dev_token(state_dir: Path) -> str:
    return (state_dir / "dev-token").read_text().strip()


def test_serve_runs_its_own_redis_and_the_cli_finds_it(
    state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    server = start_serve(state_dir, tmp_path / "ticker.log")
    try:
        assert server.proc is not None
        assert httpx.get(f"{server.url}/readyz", timeout=5).status_code == 200
        state = json.loads((state_dir / "embedded.json").read_text())
        assert state["url"] == server.url and state["pid"] == server.proc.pid
        token_file = state_dir / "dev-token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert dev_token(state_dir).startswith("tk_")
        [redis_pid] = redis_pids(state_dir)

        # The CLI with nothing but TICKER_STATE_DIR finds the service and its dev token.
        done = subprocess.run(
            [sys.executable, "-m", "ticker", "post", "Rotterdam shooter arrested", "--json"],
            env=fresh_env(state_dir),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        item = json.loads(done.stdout)
        assert item["author"] == "dev"
        listed = httpx.get(f"{server.url}/channels/en/items", timeout=5).json()["items"]
        assert [i["uri"] for i in listed] == [item["uri"]]

        started = time.monotonic()
        assert server.stop(signal.SIGTERM, timeout=10) == 0
        assert time.monotonic() - started < 10
        assert not alive(redis_pid)
        assert redis_pids(state_dir) == []
        assert not (state_dir / "embedded.json").exists()
    finally:
        server.stop(signal.SIGKILL)


def test_a_killed_serve_takes_its_redis_with_it_and_restarts_with_its_items(
    state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    server = start_serve(state_dir, tmp_path / "ticker.log")
    try:
        [redis_pid] = redis_pids(state_dir)
        server.token = dev_token(state_dir)
        item = server.post("en", headline="Rotterdam shooter arrested")

        server.stop(signal.SIGKILL)
        wait_until(lambda: not alive(redis_pid), timeout=5)
        assert redis_pids(state_dir) == []

        server.start(timeout=30)
        listed = httpx.get(f"{server.url}/channels/en/items", timeout=5).json()["items"]
        assert [i["uri"] for i in listed] == [item["uri"]]
        assert server.proc is not None
        assert json.loads((state_dir / "embedded.json").read_text())["pid"] == server.proc.pid
        server.token = dev_token(state_dir)  # still good, or a fresh one
        server.post("en", headline="Suspect to appear in court")
        assert server.stop(signal.SIGTERM) == 0
    finally:
        server.stop(signal.SIGKILL)


def test_an_empty_redis_url_means_the_embedded_redis(
    state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `TICKER_REDIS_URL=` as .env and compose files write it.
    monkeypatch.chdir(tmp_path)  # no stray .env
    server = start_serve(state_dir, tmp_path / "ticker.log", TICKER_REDIS_URL="")
    try:
        assert httpx.get(f"{server.url}/readyz", timeout=5).status_code == 200
        assert len(redis_pids(state_dir)) == 1
        assert server.stop(signal.SIGTERM) == 0
        assert redis_pids(state_dir) == []
    finally:
        server.stop(signal.SIGKILL)
