"""Running the ``ticker`` command as an editor does: a real subprocess with a clean
environment, against a real server."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import QUICK_STOP, TickerProcess
from tests.warm import popen_ticker
from ticker.settings import Settings

CLI_TIMEOUT = 30


def cli_env(tmp_path: Path, **values: str) -> dict[str, str]:
    """The caller's environment without any TICKER_* variable, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKER_")}
    env.update(
        COLUMNS="250",
        PYTHONUNBUFFERED="1",
        NO_COLOR="1",
        TICKER_STATE_DIR=str(tmp_path / "cli-state"),
        **QUICK_STOP,  # for `ticker serve`
    )
    env.update(values)
    return env


def server_env(server: TickerProcess, tmp_path: Path, **values: str) -> dict[str, str]:
    return cli_env(tmp_path, **{"TICKER_URL": server.url, "TICKER_TOKEN": server.token, **values})


def admin_env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    assert settings.redis_url is not None
    return cli_env(
        tmp_path,
        TICKER_REDIS_URL=settings.redis_url.get_secret_value(),
        TICKER_KEY_PREFIX=settings.key_prefix,
    )


def spawn(env: dict[str, str], *args: str, **popen: Any) -> subprocess.Popen[str]:
    """``python -m ticker ARGS`` as its own process, started warm (tests/warm.py)."""
    proc: subprocess.Popen[str] = popen_ticker(
        list(args),
        env=env,
        cwd=Path(env["TICKER_STATE_DIR"]).parent,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )
    return proc


def finish(proc: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    try:
        stdout, stderr = proc.communicate(timeout=CLI_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"`{proc.args!r}` hung") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return finish(spawn(env, *args))


def run_all(
    env: dict[str, str], *commands: tuple[str, ...]
) -> list[subprocess.CompletedProcess[str]]:
    """Several independent invocations at once (each one pays ~1 s of imports)."""
    procs = [spawn(env, *args) for args in commands]
    return [finish(p) for p in procs]


def run_each(
    runs: list[tuple[dict[str, str], tuple[str, ...]]],
) -> list[subprocess.CompletedProcess[str]]:
    """Like ``run_all``, each invocation with its own environment."""
    procs = [spawn(env, *args) for env, args in runs]
    return [finish(p) for p in procs]


def current(server: TickerProcess, channel: str = "en") -> list[dict[str, Any]]:
    """The desk's view (with authors): the server's token reads it."""
    r = httpx.get(
        f"{server.url}/channels/{channel}/items",
        timeout=10,
        headers={"Authorization": f"Bearer {server.token}"},
    )
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def history(server: TickerProcess, channel: str = "en") -> list[dict[str, Any]]:
    r = httpx.get(f"{server.url}/channels/{channel}/items", params={"history": "true"}, timeout=10)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])
