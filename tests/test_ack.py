"""What an acknowledged write promises (``TICKER_ACK_*``): the rules (ack.py), a Redis of
the test's own (no other test's ``WAIT`` in its command counts) with no replica, and
``ticker serve`` refusing to start when ``TICKER_ACK_FSYNC`` cannot be honoured.
The failover itself: tests/faults/test_durable_acks.py."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from pydantic import SecretStr

from tests.helpers import free_port, make_token, serve_app, stop_processes, wait_until
from tests.test_startup import one_line_failure, serve
from ticker.domain.ack import Ack, fsync_problem
from ticker.domain.errors import NotDurable
from ticker.server.embedded import find_redis_server
from ticker.settings import Settings

# -- the rules --------------------------------------------------------------------------


def test_by_default_nothing_is_waited_for() -> None:
    assert not Ack().wanted
    assert Ack(replicas=1).wanted and Ack(fsync=True).wanted


def test_replicas_wait_with_wait_and_fsync_with_waitaof() -> None:
    assert Ack(replicas=2, timeout_ms=700).command() == ("WAIT", 2, 700)
    assert Ack(replicas=1, timeout_ms=700, fsync=True).command() == ("WAITAOF", 1, 1, 700)
    assert Ack(fsync=True).command() == ("WAITAOF", 1, 0, 1000)


def test_enough_copies_pass_and_too_few_are_not_durable() -> None:
    Ack(replicas=2).check(2)
    Ack(replicas=2).check(3)
    Ack(replicas=1, fsync=True).check([1, 1])
    with pytest.raises(NotDurable, match="1 of 2 replicas confirmed it within 1000 ms"):
        Ack(replicas=2).check(1)
    with pytest.raises(NotDurable, match="0 of 1 replicas"):
        Ack(replicas=1, fsync=True).check([1, 0])
    with pytest.raises(NotDurable, match="primary's AOF fsync was not confirmed"):
        Ack(fsync=True).check([0, 0])


def test_a_redis_that_cannot_wait_is_named_in_the_503() -> None:
    unknown = redis.ResponseError("unknown command 'WAITAOF', with args beginning with: '1'")
    with pytest.raises(NotDurable, match="no WAITAOF .*7.2"):
        Ack(fsync=True).check(unknown)
    off = redis.ResponseError("WAITAOF cannot be used when numlocal is set but appendonly is off")
    with pytest.raises(NotDurable, match="appendonly off"):
        Ack(fsync=True).check(off)
    with pytest.raises(NotDurable, match="did not confirm it"):
        Ack(replicas=1).check(redis.ResponseError("NOREPLICAS"))


@pytest.mark.parametrize(
    ("info", "problem"),
    [
        ({"redis_version": "7.0.15", "role": "master", "aof_enabled": 1}, "from 7.2 on"),
        ({"redis_version": "6.2.6", "role": "master", "aof_enabled": 1}, "this server is 6.2.6"),
        ({"redis_version": "7.2.4", "role": "master", "aof_enabled": 0}, "appendonly yes"),
        ({"redis_version": "7.2.4", "role": "master", "aof_enabled": 1}, None),
        ({"redis_version": "8.0.2", "role": "master", "aof_enabled": 1}, None),
        # Valkey says 7.2.4 here whatever its own version.
        ({"redis_version": "7.2.4", "valkey_version": "8.1.1", "aof_enabled": 1}, None),
    ],
)
def test_fsync_needs_waitaof_and_the_append_only_file(
    info: dict[str, object], problem: str | None
) -> None:
    found = fsync_problem(info)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found and "TICKER_ACK_FSYNC" in found


# -- a Redis of the test's own ---------------------------------------------------------


@pytest.fixture
def lone_redis(tmp_path: Path) -> Iterator[str]:
    """A primary with no replica, AOF off; its URL."""
    yield from _lone(tmp_path, appendonly="no")


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[str]:
    """A primary with no replica, AOF on (fsync every second); its URL."""
    yield from _lone(tmp_path, appendonly="yes")


def _lone(tmp_path: Path, *, appendonly: str) -> Iterator[str]:
    binary = find_redis_server()  # the locked valkey-server (9.x: it has WAITAOF)
    if binary is None:
        pytest.skip("no redis-server installed")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
        + [appendonly, "--dir", str(tmp_path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _pings(port), timeout=10)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_processes([proc])


def _pings(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def _waits(url: str) -> int:
    """How many WAIT and WAITAOF this Redis has run."""
    stats = redis.Redis.from_url(url).info("commandstats")
    return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("wait", "waitaof"))


def _settings(url: str, tmp_path: Path, **values: object) -> Settings:
    return Settings(
        redis_url=SecretStr(url),
        key_prefix="tkack",
        state_dir=tmp_path / "s",
        write_rate_per_minute=60_000,
        **values,  # type: ignore[arg-type]
    )


async def _every_write(http: httpx.AsyncClient) -> list[httpx.Response]:
    """Post (with a story), correct, hold, release, kill and purge one item, and post a
    second with an Idempotency-Key twice; every reply."""
    key = {"Idempotency-Key": "k-1"}
    first = await http.post("/channels/en/items", json={"headline": "one", "story": "s"})
    uri = first.json()["uri"]
    item = f"/channels/en/items/{uri}"
    return [
        first,
        await http.patch(item, json={"headline": "one, corrected"}),
        await http.patch(item, json={"status": "withheld"}),
        await http.patch(item, json={"status": "usable"}),
        await http.delete(item),
        await http.post(f"{item}/purge", json={"reason": "court order"}),
        await http.post("/channels/en/items", json={"headline": "two"}, headers=key),
        await http.post("/channels/en/items", json={"headline": "two"}, headers=key),
    ]


@pytest.mark.anyio
async def test_by_default_a_write_issues_no_wait(lone_redis: str, tmp_path: Path) -> None:
    settings = _settings(lone_redis, tmp_path)
    token = make_token(settings, "chief", ["*"], "chief")
    before = _waits(lone_redis)
    async with (
        serve_app(settings) as (base, _app),
        httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}) as http,
    ):
        replies = await _every_write(http)
    assert [r.status_code for r in replies] == [201, 200, 200, 200, 200, 200, 201, 201]
    assert _waits(lone_redis) == before
    assert not redis.Redis.from_url(lone_redis).keys("tkack:*:ack")


@pytest.mark.anyio
async def test_every_write_no_replica_confirms_answers_503_not_durable(
    lone_redis: str, tmp_path: Path
) -> None:
    settings = _settings(lone_redis, tmp_path, ack_replicas=1, ack_timeout_ms=100)
    token = make_token(settings, "chief", ["*"], "chief")
    probe = redis.Redis.from_url(lone_redis, decode_responses=True)
    async with (
        serve_app(settings) as (base, _app),
        httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}) as http,
    ):
        began = time.monotonic()
        first = await http.post("/channels/en/items", json={"headline": "one", "story": "s"})
        took = time.monotonic() - began
        assert first.status_code == 503, first.text
        assert first.json()["error"] == "not_durable"
        assert "may be applied" in first.json()["message"]
        assert first.headers["Retry-After"] == "1"
        assert 0.1 <= took < 2
        # It was applied on the primary, as the answer warns.
        (uri,) = probe.hkeys("tkack:{en}:items")
        item = f"/channels/en/items/{uri!s}"
        replies = [
            await http.patch(item, json={"headline": "one, corrected"}),
            await http.patch(item, json={"status": "withheld"}),
            await http.delete(item),
            # A retried kill finds the item killed and writes nothing: still unconfirmed.
            await http.delete(item),
            await http.post(f"{item}/purge", json={"reason": "court order"}),
        ]
        key = {"Idempotency-Key": "k-1"}
        for _ in range(2):  # the retry is answered from the first write: still unconfirmed
            replies.append(
                await http.post("/channels/en/items", json={"headline": "two"}, headers=key)
            )
    assert [(r.status_code, r.json()["error"]) for r in replies] == [(503, "not_durable")] * 7
    # The retried post was written once (the first item's record went with its purge).
    assert len(probe.hkeys("tkack:{en}:items")) == 1


@pytest.mark.anyio
async def test_with_fsync_asked_every_write_waits_for_the_append_only_file(
    aof_redis: str, tmp_path: Path
) -> None:
    settings = _settings(aof_redis, tmp_path, ack_fsync=True, ack_timeout_ms=2000)
    token = make_token(settings, "chief", ["*"], "chief")
    before = _waits(aof_redis)
    async with (
        serve_app(settings) as (base, _app),
        httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}) as http,
    ):
        replies = await _every_write(http)
    assert [r.status_code for r in replies] == [201, 200, 200, 200, 200, 200, 201, 201]
    stats = redis.Redis.from_url(aof_redis).info("commandstats")
    assert int(stats["cmdstat_waitaof"]["calls"]) >= len(replies) - 1
    assert _waits(aof_redis) > before


def test_serve_will_not_start_with_ack_fsync_on_a_redis_that_cannot_fsync_writes(
    lone_redis: str, tmp_path: Path
) -> None:
    # AOF off here; and before 7.2 there is no WAITAOF either: either is named.
    done = serve(tmp_path, TICKER_REDIS_URL=lone_redis, TICKER_ACK_FSYNC="true")
    line = one_line_failure(done)
    assert "TICKER_ACK_FSYNC" in line
    assert "WAITAOF" in line or "appendonly yes" in line
