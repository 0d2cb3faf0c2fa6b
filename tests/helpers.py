"""Test helpers: free ports, tokens, a real ticker process, an in-loop uvicorn, reader
counts, posting through the API. An SSE reader is in tests/sse.py, raw sockets in
tests/sockets.py, the Redis side in tests/redis_data.py."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import uvicorn
from pydantic import SecretStr

from tests.warm import popen_ticker
from ticker.http.app import create_app
from ticker.http.front import Front
from ticker.newsroom.auth import ALL_CHANNELS, Tokens
from ticker.settings import Settings
from ticker.store import Store

# Tests stop servers with SIGTERM all the time: no drain, and an exact last ``retry:``,
# unless a test sets these itself (test_drain.py).
QUICK_STOP = {"TICKER_DRAIN_S": "0", "TICKER_RETRY_JITTER_MS": "0"}


def server_env(redis_url: str, prefix: str, state_dir: Path) -> dict[str, str]:
    """A test ``ticker serve``'s environment: short intervals, a generous write rate."""
    return {
        "TICKER_REDIS_URL": redis_url,
        "TICKER_KEY_PREFIX": prefix,
        "TICKER_STATE_DIR": str(state_dir),
        "TICKER_HEARTBEAT_S": "1",
        "TICKER_RETRY_MS": "500",
        "TICKER_READ_BLOCK_MS": "1000",
        "TICKER_WRITE_RATE_PER_MINUTE": "60000",
        **QUICK_STOP,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def make_token(
    settings: Settings,
    name: str,
    channels: list[str],
    role: str = "editor",
    *,
    expires: timedelta | None = None,
) -> str:
    assert settings.redis_url is not None
    url = settings.redis_url.get_secret_value()

    async def create() -> str:
        store = Store(url, prefix=settings.key_prefix)
        try:
            return await Tokens(store).create(name, channels, role, expires=expires)
        finally:
            await store.close()

    # A thread of its own, so this works from sync fixtures and inside async tests alike.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, create()).result()


def bearer(secret: str) -> dict[str, str]:
    """The ``Authorization`` header that sends ``secret``."""
    return {"Authorization": f"Bearer {secret}"}


def ops_headers(settings: Settings) -> dict[str, str]:
    """An ``Authorization`` header for a new ``ops`` token: /metrics and /stats need one."""
    secret = make_token(settings, f"ops-{secrets.token_hex(4)}", [ALL_CHANNELS], "ops")
    return {"Authorization": f"Bearer {secret}"}


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def readers(server: TickerProcess, channel: str = "en") -> int:
    """A channel's open streams, as ``/stats`` counts them."""
    return int(server.ops_get("/stats").json()[channel]["readers"])


def metric_readers(server: TickerProcess, channel: str = "en") -> float:
    """A channel's open streams, as the ``ticker_readers`` gauge of ``/metrics`` says."""
    return metric_samples(server.ops_get("/metrics").text)[f'ticker_readers{{channel="{channel}"}}']


def sigterm_and_time(proc: TickerProcess) -> float:
    """SIGTERM ``proc``; assert a clean exit and return how long it took."""
    started = time.monotonic()
    assert proc.stop(signal.SIGTERM) == 0
    return time.monotonic() - started


class TickerProcess:
    """``python -m ticker serve`` as a real process on a fixed port, restartable."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        port: int | None = None,
        args: tuple[str, ...] = (),
        log: Path | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env}
        self.args = args
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.token = ""
        self.ops_token = ""  # made on first use by ``ops_get``; reset when keys are deleted

    def start(self, timeout: float = 20.0) -> None:
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.proc = popen_ticker(
                [
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--log-level",
                    "info",
                    *self.args,
                ],
                env={**QUICK_STOP, **self.env},
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
            )
        finally:
            if not isinstance(out, int):
                out.close()  # the child has its own copy

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"ticker exited with {self.proc.returncode}")
            try:
                return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            wait_until(ready, timeout)
        except BaseException:
            # Not ready in time (a loaded machine): stop it, or it outlives the test run
            # (a fixture whose set-up failed is never torn down).
            with contextlib.suppress(AssertionError):  # the first failure is the one to see
                self.stop()  # SIGTERM: with --workers, its workers go too
            raise

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        proc, self.proc = self.proc, None
        if proc is None:
            return 0
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGUSR1)  # faulthandler: stacks into the log
                time.sleep(1)
                proc.kill()
                proc.wait()
                tail = self.log.read_text()[-3000:] if self.log else ""
                raise AssertionError(f"ticker did not exit in time; log:\n{tail}") from None
        return proc.returncode

    def restart(self) -> None:
        self.stop()
        self.start()

    def ops_secret(self) -> str:
        """An ``ops`` token's secret, made in the process's Redis (under its key prefix) on
        first use: /metrics and /stats need one."""
        if not self.ops_token:
            settings = Settings(
                redis_url=SecretStr(self.env["TICKER_REDIS_URL"]),
                key_prefix=self.env.get("TICKER_KEY_PREFIX", "ticker"),
            )
            self.ops_token = ops_headers(settings)["Authorization"].removeprefix("Bearer ")
        return self.ops_token

    def ops_get(self, path: str, timeout: float = 5) -> httpx.Response:
        """``GET /metrics`` or ``/stats`` with the ``ops`` token."""
        headers = {"Authorization": f"Bearer {self.ops_secret()}"}
        response = httpx.get(f"{self.url}{path}", headers=headers, timeout=timeout)
        response.raise_for_status()
        return response

    # -- editor calls through the real API -----------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def post(self, channel: str, **fields: Any) -> dict[str, Any]:
        r = httpx.post(
            f"{self.url}/channels/{channel}/items", json=fields, headers=self._headers(), timeout=10
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    def patch(self, channel: str, uri: str, **fields: Any) -> dict[str, Any]:
        r = httpx.patch(
            f"{self.url}/channels/{channel}/items/{uri}",
            json=fields,
            headers=self._headers(),
            timeout=10,
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    def kill(self, channel: str, uri: str, notice: str | None = None) -> dict[str, Any]:
        r = httpx.request(
            "DELETE",
            f"{self.url}/channels/{channel}/items/{uri}",
            json=None if notice is None else {"notice": notice},
            headers=self._headers(),
            timeout=10,
        )
        assert r.status_code == 200, r.text
        return dict(r.json())


class _Server(uvicorn.Server):
    """uvicorn's server, which a test tells to exit at once: uvicorn's own loop notices
    ``should_exit`` only at its next 0.1 s tick, a tenth of a second on every test."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.exit_now = asyncio.Event()

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):  # the Date header, once a second
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.1):
                    await self.exit_now.wait()


@contextlib.asynccontextmanager
async def serve_app(settings: Settings, *, http: Any = Front) -> AsyncIterator[tuple[str, Any]]:
    """A real uvicorn in this event loop on a free port; yields (base URL, app).

    ``http`` is ticker's own front protocol by default (what ``ticker serve`` runs); pass
    ``HttpProtocol`` for uvicorn's protocol with ticker's extension alone, or
    ``"httptools"`` for plain uvicorn, where streams use ASGI sends only."""
    port = free_port()
    app = create_app(settings.model_copy(update={"port": port}))
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=2,
        http=http,
        ws="none",
        proxy_headers=False,  # as `ticker serve`: X-Forwarded-For is ticker's (forwarded.py)
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        server.exit_now.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), 10)
        except TimeoutError:
            for t in asyncio.all_tasks():
                t.print_stack(limit=6)
            raise


PY_READER = Path(__file__).resolve().parent.parent / "clients" / "python" / "reader.py"


def load_python_reader(name: str) -> ModuleType:
    """clients/python/reader.py as a module named ``name`` (a file, not a package)."""
    spec = importlib.util.spec_from_file_location(name, PY_READER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up while the class is built
    spec.loader.exec_module(module)
    return module


def stop_processes(procs: Iterable[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to all, then wait (SIGKILL whatever is still running after 10 s)."""
    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def post_item(
    api: httpx.AsyncClient, headline: str, channel: str = "en", **fields: Any
) -> dict[str, Any]:
    """Post through the API; the writer's reply (a 201, or the test fails)."""
    r = await api.post(f"/channels/{channel}/items", json={"headline": headline, **fields})
    assert r.status_code == 201, r.text
    return dict(r.json())


def metric_samples(text: str) -> dict[str, float]:
    """A /metrics page as {'name{labels}': value}, comments left out."""
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples
