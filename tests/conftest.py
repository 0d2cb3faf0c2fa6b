"""Shared fixtures: a real Redis (TICKER_TEST_REDIS_URL, or an embedded one), a key prefix
per test (deleted afterwards), settings, editor tokens, and a real ticker server."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from pydantic import SecretStr

from tests.helpers import TickerProcess, make_token, serve_app, server_env
from ticker.newsroom.auth import ALL_CHANNELS
from ticker.server.embedded import EmbeddedRedis
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
        # As the machine's Redis the tests otherwise use: no append-only file (purge tests
        # check that the reply says so; tests/test_purge_disk.py starts its own with one).
        client = redis.Redis.from_url(url)
        try:
            client.config_set("appendonly", "no")
        finally:
            client.close()
        yield url


def _shares_server(request: pytest.FixtureRequest) -> bool:
    """True when this test runs against its module's one ``ticker serve`` (see
    ``ticker_server``): the module is marked ``server_per_module``, and the test neither
    is marked ``own_server`` nor sets ``ticker_server_env``."""
    node = request.node
    return (
        node.get_closest_marker("server_per_module") is not None
        and node.get_closest_marker("own_server") is None
        and not request.getfixturevalue("ticker_server_env")
    )


@pytest.fixture(scope="module")
def module_prefix() -> str:
    """The key prefix of a module's shared server (see ``ticker_server``)."""
    return f"tktest-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def prefix(request: pytest.FixtureRequest, redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; every key under it is deleted afterwards.

    Tests that share their module's server share its prefix too, one after the other:
    the keys are deleted after each test all the same, so each starts from an empty
    Redis."""
    name = (
        request.getfixturevalue("module_prefix")
        if _shares_server(request)
        else f"tktest-{uuid.uuid4().hex[:10]}"
    )
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
def settings(
    redis_url: str, prefix: str, tmp_path: Path, settings_overrides: dict[str, Any]
) -> Settings:
    values: dict[str, Any] = {
        "redis_url": SecretStr(redis_url),
        "key_prefix": prefix,
        "state_dir": tmp_path / "state",
        "heartbeat_s": 1.0,
        "retry_ms": 500,
        "read_block_ms": 1000,
        "write_rate_per_minute": 60_000,  # the rate limit has tests of its own
        "drain_s": 0,  # test_drain.py has the drain's tests
        "retry_jitter_ms": 0,  # and the last retry's jitter
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
def api_token(token: str) -> str:
    """The token ``api`` sends: an editor's for every channel; override in a module for
    another role."""
    return token


@pytest.fixture
async def api(server: tuple[str, Any], api_token: str) -> AsyncIterator[httpx.AsyncClient]:
    """An ``httpx.AsyncClient`` on ``server``, sending ``api_token``."""
    async with httpx.AsyncClient(
        base_url=server[0], timeout=10, headers={"Authorization": f"Bearer {api_token}"}
    ) as client:
        yield client


@pytest.fixture
async def anon(server: tuple[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    """An ``httpx.AsyncClient`` on ``server`` with no token."""
    async with httpx.AsyncClient(base_url=server[0], timeout=10) as client:
        yield client


@pytest.fixture
def ticker_server_env() -> dict[str, str]:
    """Override in a test module to pass TICKER_* variables to the ticker process."""
    return {}


@pytest.fixture(scope="module")
def module_server_env() -> dict[str, str]:
    """Override in a ``server_per_module`` module to pass TICKER_* variables (channel
    settings) to its one server."""
    return {}


@pytest.fixture(scope="module")
def module_ticker_server(
    redis_url: str,
    module_prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
    module_server_env: dict[str, str],
) -> Iterator[TickerProcess]:
    """One ``ticker serve`` for every test of a ``server_per_module`` module."""
    folder = tmp_path_factory.mktemp("module-ticker")
    env = {**server_env(redis_url, module_prefix, folder / "server-state"), **module_server_env}
    proc = TickerProcess(env, log=folder / "ticker.log")
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def ticker_server(
    request: pytest.FixtureRequest,
    settings: Settings,
    tmp_path: Path,
    ticker_server_env: dict[str, str],
) -> Iterator[TickerProcess]:
    """A real ``ticker serve`` process on a free port, with an all-channel token.

    In a module marked ``server_per_module`` the tests share one process (its keys are
    deleted after each test, see ``prefix``); a test that stops, restarts or reconfigures
    its server is marked ``own_server``, or sets ``ticker_server_env``, and gets its own."""
    assert settings.redis_url is not None
    if _shares_server(request):
        proc: TickerProcess = request.getfixturevalue("module_ticker_server")
        if proc.proc is None or proc.proc.poll() is not None:
            proc.start()  # a failed test may have left it down; the next one still runs
        proc.token = make_token(settings, "server-editor", [ALL_CHANNELS])
        proc.ops_token = ""  # the last test's keys, and its ops token, are gone
        yield proc
        return
    env = {
        **server_env(
            settings.redis_url.get_secret_value(), settings.key_prefix, tmp_path / "server-state"
        ),
        **ticker_server_env,
    }
    proc = TickerProcess(env, log=tmp_path / "ticker.log")
    proc.token = make_token(settings, "server-editor", [ALL_CHANNELS])
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


# The slowest folders first: under xdist (`--dist loadfile`) each file is one unit of work,
# handed out in this order, and the long ones started early keep both workers busy to the end.
SLOW_FIRST = (
    "tests/browser/",
    "tests/faults/",
    "tests/security/",
    "tests/test_cli.py",
    "tests/test_events.py",
    "tests/test_filter_memory.py",
    "tests/test_cli_terminal.py",
    "tests/test_retention.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slowest files first (browser, faults, security, then the longest), each file's
    tests still in file order. The sync Playwright API runs an event loop of its own while
    its browser is open; the browser fixture is module-scoped, so the anyio tests after
    that module find the loop free."""

    def rank(item: pytest.Item) -> int:
        starts = [item.nodeid.startswith(folder) for folder in SLOW_FIRST]
        return starts.index(True) if True in starts else len(SLOW_FIRST)

    items.sort(key=rank)
