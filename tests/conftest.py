"""Shared fixtures: a real Redis (TICKER_TEST_REDIS_URL, or an embedded one), a key prefix
per test (deleted afterwards), settings, editor tokens, and a real ticker server."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from pydantic import SecretStr

from tests.helpers import TickerProcess, make_token, serve_app
from ticker.auth import ALL_CHANNELS
from ticker.embedded import EmbeddedRedis
from ticker.settings import Settings


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"  # redis.asyncio is asyncio-only


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Redis every test uses: TICKER_TEST_REDIS_URL, else a private embedded server."""
    given = os.environ.get("TICKER_TEST_REDIS_URL")
    if given:
        yield given
        return
    with EmbeddedRedis(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; every key under it is deleted afterwards."""
    name = f"tktest-{uuid.uuid4().hex[:10]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{name}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module to change settings (short TTLs, small buffers)."""
    return {}


@pytest.fixture
def settings(redis_url: str, prefix: str, tmp_path: Path,
             settings_overrides: dict[str, Any]) -> Settings:
    values: dict[str, Any] = {
        "redis_url": SecretStr(redis_url),
        "key_prefix": prefix,
        "state_dir": tmp_path / "state",
        "heartbeat_s": 1.0,
        "retry_ms": 500,
        "read_block_ms": 1000,
        "write_rate_per_minute": 60_000,  # the rate limit has tests of its own
        **settings_overrides,
    }
    return Settings(**values)


@pytest.fixture
def token(settings: Settings) -> str:
    """An editor token for every channel."""
    return make_token(settings, "editor", [ALL_CHANNELS])


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[tuple[str, Any]]:
    """(base URL, app) of a real uvicorn in the test's event loop."""
    async with serve_app(settings) as running:
        yield running


@pytest.fixture
def ticker_server_env() -> dict[str, str]:
    """Override in a test module to pass TICKER_* variables to the ticker process."""
    return {}


@pytest.fixture
def ticker_server(settings: Settings, tmp_path: Path,
                  ticker_server_env: dict[str, str]) -> Iterator[TickerProcess]:
    """A real ``ticker serve`` process on a free port, with an all-channel token."""
    assert settings.redis_url is not None
    env = {
        "TICKER_REDIS_URL": settings.redis_url.get_secret_value(),
        "TICKER_KEY_PREFIX": settings.key_prefix,
        "TICKER_STATE_DIR": str(tmp_path / "server-state"),
        "TICKER_HEARTBEAT_S": "1",
        "TICKER_RETRY_MS": "500",
        "TICKER_READ_BLOCK_MS": "1000",
        "TICKER_WRITE_RATE_PER_MINUTE": "60000",
        **ticker_server_env,
    }
    proc = TickerProcess(env, log=tmp_path / "ticker.log")
    proc.token = make_token(settings, "server-editor", [ALL_CHANNELS])
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests last: the sync Playwright API runs an event loop of its own while its
    browser is open, and the anyio tests need the thread's loop free. Under xdist
    (``--dist loadfile``) the browser file is one unit of work, handed out last."""
    items.sort(key=lambda item: item.nodeid.startswith("tests/browser/"))
