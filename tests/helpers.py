"""Test helpers: free ports, editor tokens, a real ticker process, an in-loop uvicorn, an
SSE reader."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import redis
import uvicorn
from httpx_sse import ServerSentEvent, aconnect_sse
from pydantic import SecretStr

from ticker.auth import ALL_CHANNELS, Tokens
from ticker.http.app import create_app
from ticker.http.front import Front
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


def read_until(sock: socket.socket, marker: bytes, timeout: float = 5) -> bytes:
    """What a raw socket receives until ``marker`` has come, it closes, or ``timeout``."""
    data = b""
    deadline = time.monotonic() + timeout
    sock.settimeout(0.2)
    while marker not in data and time.monotonic() < deadline:
        with contextlib.suppress(TimeoutError):
            part = sock.recv(65536)
            if not part:
                break
            data += part
    return data


STREAM_REQUEST = b"GET /channels/en/events HTTP/1.1\r\nHost: t\r\n\r\n"


def connect(server: TickerProcess, data: bytes = b"", timeout: float = 5) -> socket.socket:
    """A raw connection to ``server``, ``data`` sent on it (nothing if empty)."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    if data:
        sock.sendall(data)
    return sock


def split_response(data: bytes) -> tuple[bytes, dict[bytes, bytes], bytes]:
    """Raw response bytes as (status line, headers, the rest): names in lower case, the
    first of each name kept."""
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers: dict[bytes, bytes] = {}
    for line in lines:
        name, _, value = line.partition(b":")
        headers.setdefault(name.strip().lower(), value.strip())
    return status, headers, body


def readers(server: TickerProcess, channel: str = "en") -> int:
    """A channel's open streams, as ``/stats`` counts them."""
    return int(server.ops_get("/stats").json()[channel]["readers"])


def metric_readers(server: TickerProcess, channel: str = "en") -> float:
    """A channel's open streams, as the ``ticker_readers`` gauge of ``/metrics`` says."""
    return metric_samples(server.ops_get("/metrics").text)[f'ticker_readers{{channel="{channel}"}}']


def open_streams(port: int, count: int, *, timeout: float = 10) -> list[socket.socket]:
    """``count`` raw SSE connections, each past its ``200`` status line."""
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(STREAM_REQUEST)
        socks.append(s)
    for s in socks:
        s.settimeout(timeout)
        assert s.recv(20).startswith(b"HTTP/1.1 200")
    return socks


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
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ticker",
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
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), 10)
        except TimeoutError:
            for t in asyncio.all_tasks():
                t.print_stack(limit=6)
            raise


@dataclass
class Reader:
    """An SSE reader on its own task, collecting events (heartbeat blanks dropped)."""

    events: list[ServerSentEvent] = field(default_factory=list)
    status: int = 0
    retry: int | None = None
    last: ServerSentEvent | None = None  # the last frame, heartbeat blanks included
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def of(self, kind: str) -> list[dict[str, Any]]:
        import json

        return [json.loads(e.data) for e in self.events if e.event == kind]

    async def wait_for(self, predicate: Any, timeout: float = 5.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate(self):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"reader condition not met; got {len(self.events)} events:"
                    f" {[(e.event, e.id) for e in self.events][:30]}"
                )
            await asyncio.sleep(0.02)

    async def wait_ended(self, retry_ms: int, timeout: float = 5.0) -> None:
        """Wait until the server ends the stream, and check it ended as the server ends
        one: cleanly, its last frame a ``retry:`` of ``retry_ms`` (``stream.finish``)."""
        assert self.task is not None
        await asyncio.wait_for(self.ended.wait(), timeout)
        await asyncio.wait({self.task}, timeout=timeout)
        assert self.task.done() and self.task.exception() is None, self.task
        assert self.last is not None and self.last.retry == retry_ms, self.last

    async def close(self) -> None:
        if self.task:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task


async def connected(reader: Reader, count: int = 0, timeout: float = 5.0) -> Reader:
    """``reader`` once its stream is open (200) and it has ``count`` events."""
    await asyncio.wait_for(reader.connected.wait(), timeout)
    assert reader.status == 200
    await reader.wait_for(lambda r: len(r.events) >= count, timeout)
    return reader


def start_reader(
    url: str,
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
    read_delay: float = 0.0,
) -> Reader:
    reader = Reader()

    async def run() -> None:
        try:
            async with (
                httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as client,
                aconnect_sse(
                    client, "GET", url, headers=dict(headers or {}), params=params
                ) as source,
            ):
                reader.status = source.response.status_code
                reader.connected.set()
                async for event in source.aiter_sse():
                    reader.last = event
                    if event.retry is not None:
                        reader.retry = event.retry
                    if event.data or event.event == "reset":
                        reader.events.append(event)
                    if read_delay:
                        await asyncio.sleep(read_delay)
        finally:
            reader.connected.set()
            reader.ended.set()

    reader.task = asyncio.create_task(run())
    return reader


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


def rdb(settings: Settings) -> Any:  # redis-py's reply types are too loose to narrow here
    """A plain (bytes) client of the test's Redis."""
    assert settings.redis_url is not None
    return redis.Redis.from_url(settings.redis_url.get_secret_value())


def stream_len(settings: Settings, channel: str = "en") -> int:
    """How many entries a channel's event stream holds (what has been written to it)."""
    client = rdb(settings)
    try:
        return int(client.xlen(f"{settings.key_prefix}:{{{channel}}}:events"))
    finally:
        client.close()


def stream_entries(settings: Settings, channel: str = "en") -> list[tuple[str, dict[str, str]]]:
    """A channel's event stream as Redis holds it: (id, fields), decoded."""
    client = rdb(settings)
    try:
        rows = client.xrange(f"{settings.key_prefix}:{{{channel}}}:events")
        return [(i.decode(), {k.decode(): v.decode() for k, v in f.items()}) for i, f in rows]
    finally:
        client.close()


async def post_item(
    api: httpx.AsyncClient, headline: str, channel: str = "en", **fields: Any
) -> dict[str, Any]:
    """Post through the API; the writer's reply (a 201, or the test fails)."""
    r = await api.post(f"/channels/{channel}/items", json={"headline": headline, **fields})
    assert r.status_code == 201, r.text
    return dict(r.json())


def item_entry(uri: str, headline: str, *, author: str = "test") -> dict[str, str]:
    """An item's first version as a stream entry, as ticker writes one (docs/streams.md):
    for tests that write straight into Redis."""
    now = datetime.now(UTC)
    item = {
        "uri": uri,
        "channel": "en",
        "version": 1,
        "headline": headline,
        "language": "en",
        "created_at": now.isoformat(),
        "updated_at": now.isoformat(),
        "expires_at": (now + timedelta(hours=1)).isoformat(),
        "author": author,
    }
    return {"v": "1", "type": "item", "uri": uri, "item": json.dumps(item)}


def big_entry(n: int, size: int = 16_000) -> dict[str, str]:
    """Item ``big{n}`` with a headline of ``size`` bytes: a few fill a socket's buffers."""
    return item_entry(f"big{n}", "x" * size)


def keys_holding(settings: Settings, text: str) -> list[str]:
    """Every key under the test's prefix whose value contains ``text`` anywhere."""
    client = rdb(settings)
    needle = text.encode()
    found = []
    try:
        for key in client.scan_iter(match=f"{settings.key_prefix}:*", count=1000):
            kind = client.type(key).decode()
            if kind == "string":
                values = [client.get(key) or b""]
            elif kind == "hash":
                values = [k + b"=" + v for k, v in client.hgetall(key).items()]
            elif kind == "list":
                values = client.lrange(key, 0, -1)
            elif kind == "zset":
                values = client.zrange(key, 0, -1)
            elif kind == "stream":
                values = [b" ".join(k + v for k, v in f.items()) for _, f in client.xrange(key)]
                # XDEL leaves deleted entries' bytes in the stream's nodes: look there too
                # (DUMP may compress them, so a miss here proves less than a hit).
                values.append(client.dump(key) or b"")
            else:
                values = [client.dump(key) or b""]
            if any(needle in v for v in values):
                found.append(key.decode())
    finally:
        client.close()
    return found


def metric_samples(text: str) -> dict[str, float]:
    """A /metrics page as {'name{labels}': value}, comments left out."""
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples
