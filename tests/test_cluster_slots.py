"""Redis Cluster without a cluster: every multi-key command ticker sends stays in one hash
slot (computed with redis-py's ``key_slot`` on the real key names), and the URL forms
``TICKER_REDIS_URL`` accepts. No Redis is contacted."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr, ValidationError
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.crc import key_slot

from ticker.domain.redisurl import CLUSTER, SENTINEL, SINGLE, parse_redis_url
from ticker.settings import Settings
from ticker.store import Change, Store
from ticker.store.redisconn import open_redis

pytestmark = pytest.mark.anyio

CHANNELS = ["en", "ar", "es", "breaking", "a-b-9", "x" * 32]
PREFIXES = ["ticker", "tk.test_1-A"]


def slot(key: str) -> int:
    return key_slot(key.encode())


class Recorder:
    """Stands in for a registered script: keeps the KEYS of every call."""

    def __init__(self, reply: Any) -> None:
        self.reply = reply
        self.calls: list[list[str]] = []

    async def __call__(self, keys: list[str], args: list[Any] | None = None) -> Any:
        self.calls.append(list(keys))
        return self.reply


class Pipeline:
    """Stands in for ``redis.pipeline()``: keeps the keys its commands name."""

    def __init__(self, keys: list[str]) -> None:
        self.keys = keys

    async def __aenter__(self) -> Pipeline:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return lambda key, *a, **kw: self.keys.append(key)

    async def execute(self) -> list[Any]:
        return [0, 0, [], []]


class FakeRedis:
    def __init__(self) -> None:
        self.pipeline_keys: list[str] = []

    def pipeline(self, transaction: bool = True) -> Pipeline:
        return Pipeline(self.pipeline_keys)


def change(**overrides: Any) -> Change:
    values: dict[str, Any] = dict(
        uri="u1",
        expected_version=0,
        event_type="item",
        body='{"uri": "u1"}',
        history_max_items=100,
        live_max_items=20,
        versions_ttl_ms=1000,
        live_score=1,
        expires_ms=2,
        embargo_ms=None,
        idempotency=("key{x}", "fp"),
    )
    return Change(**{**values, **overrides})


@pytest.mark.parametrize("prefix", PREFIXES)
async def test_every_script_and_pipeline_touches_one_slot(prefix: str) -> None:
    store = Store("redis+cluster://127.0.0.1:7001", prefix=prefix)
    scripts = {
        "commit": Recorder(["ok", "{}"]),
        "snapshot": Recorder(["0-0"]),
        "knows": Recorder(1),
        "token_create": Recorder(1),
        "token_revoke": Recorder(1),
        "authorize": Recorder([0]),
        "refund": Recorder(1),
        "token_lookup": Recorder([0]),
        "token_rotate": Recorder(1),
    }
    store.client.runners.update(scripts)
    fake = FakeRedis()
    store.client.redis = fake
    try:
        for ch in CHANNELS:
            before = {name: len(r.calls) for name, r in scripts.items()}
            await store.items.commit(ch, change())
            await store.items.commit(ch, change(claim="embargo", idempotency=None, uri="{other}"))
            await store.items.commit(ch, change(claim="expiry", keep_state=True))
            await store.stream.snapshot(ch)
            await store.stream.knows(ch, "1-0")
            fake.pipeline_keys.clear()
            await store.items.stats(ch)
            await store.items.add_reach(ch, {"u1": 1, "u{2}": 2})
            await store.items.link_story(ch, "quake", "u1", ttl_ms=1)
            channel_calls = [
                c
                for name in ("commit", "snapshot", "knows")
                for c in scripts[name].calls[before[name] :]
            ]
            assert len(channel_calls) == 5
            for keys in [*channel_calls, fake.pipeline_keys]:
                assert {slot(k) for k in keys} == {slot(ch)}, keys
            assert all(k.startswith(f"{prefix}:{{{ch}}}:") for k in scripts["commit"].calls[-1])
            # Every key of the channel, the per-item and per-request ones included.
            k = store.keys(ch)
            names = [
                k.events,
                k.items,
                k.live,
                k.expiry,
                k.embargo,
                k.idem_prefix + "any{key}",
                k.versions_prefix + "some-uri",
                k.held,
                k.pinned,
                k.reach,
                k.story_prefix + "any{story}",
                k.purged,
                k.audit,
            ]
            assert {slot(n) for n in names} == {slot(ch)}
        await store.tokens.create("desk", "ab" * 32, {"name": "desk"})
        await store.tokens.revoke("desk")
        await store.tokens.authorize("cd" * 32, "en{x}", now_ms=1, interval_ms=10.0, burst=2)
        await store.tokens.refund("cd" * 32, interval_ms=10.0)
        await store.tokens.by_hash("cd" * 32, now_ms=1)
        await store.tokens.rotate("desk", "ef" * 32, now_ms=1, grace_ms=0)
        auth_names = (
            "token_create",
            "token_revoke",
            "authorize",
            "refund",
            "token_lookup",
            "token_rotate",
        )
        auth_calls = [c for name in auth_names for c in scripts[name].calls]
        assert [len(c) for c in auth_calls] == [2, 3, 4, 1, 3, 2]
        for keys in auth_calls:
            assert {slot(k) for k in keys} == {slot("auth")}, keys
        # The AOF rewrite's keys (aof.py) share one slot: their pipelines stay on one node.
        assert {slot(k) for k in store.aof.keys} == {slot("aof")}
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("url", "kind", "nodes", "service"),
    [
        ("redis://127.0.0.1:6379/0", SINGLE, (), ""),
        ("unix:///run/redis.sock", SINGLE, (), ""),
        ("redis+cluster://127.0.0.1:7001", CLUSTER, (("127.0.0.1", 7001),), ""),
        (
            "redis+cluster://u:p%40ss@a:7001,b:7002,[::1]:7003/0?socket_timeout=3",
            CLUSTER,
            (("a", 7001), ("b", 7002), ("::1", 7003)),
            "",
        ),
        ("rediss+cluster://node", CLUSTER, (("node", 6379),), ""),
        (
            "redis+sentinel://s1,s2:26380/mymaster",
            SENTINEL,
            (("s1", 26379), ("s2", 26380)),
            "mymaster",
        ),
        ("rediss+sentinel://:pw@s1:26379/main/2", SENTINEL, (("s1", 26379),), "main"),
    ],
)
def test_redis_url_forms(
    url: str, kind: str, nodes: tuple[tuple[str, int], ...], service: str
) -> None:
    target = parse_redis_url(url)
    assert (target.kind, target.nodes, target.service) == (kind, nodes, service)
    Settings(redis_url=SecretStr(url))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://u:hunter2@h:1", "must start with one of"),
        ("127.0.0.1:6379", "must start with one of"),
        ("redis+cluster://u:hunter2@h:1/2", "only database 0"),
        ("redis+cluster://u:hunter2@h:1,:2", "every node needs a host"),
        ("redis+cluster://u:hunter2@h:1,g:port", "a number from 1 to 65535"),
        ("redis+cluster://u:hunter2@h:99999", "a number from 1 to 65535"),
        ("redis+cluster://u:hunter2/x@h:1", "a number from 1 to 65535"),
        ("redis+sentinel://u:hunter2@h:26379", "must name the primary"),
        ("redis+sentinel://u:hunter2@h:26379/main/x", "database must be a number"),
        ("redis+cluster://u:hunter2@h?socket_timeout=soon", "Invalid value for 'socket_timeout'"),
    ],
)
def test_bad_redis_urls_are_refused_clearly_without_the_password(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_redis_url(url)
    with pytest.raises(ValidationError) as refused:
        Settings(redis_url=SecretStr(url))
    assert message.split("'")[0] in str(refused.value)
    assert "hunter2" not in str(refused.value)


async def test_each_url_form_makes_its_own_client_without_connecting() -> None:
    single = open_redis("redis://127.0.0.1:1/0", max_connections=7)
    assert isinstance(single.client.connection_pool, BlockingConnectionPool)
    assert single.queues and not single.cluster
    cluster = open_redis("redis+cluster://127.0.0.1:7001,127.0.0.1:7002", max_connections=7)
    assert isinstance(cluster.client, RedisCluster) and cluster.cluster and not cluster.queues
    assert {n.name for n in cluster.client.startup_nodes} == {"127.0.0.1:7001", "127.0.0.1:7002"}
    assert cluster.client.get_connection_kwargs()["max_connections"] == 7  # per node
    assert cluster.client.retry.get_retries() == 0  # a script is never sent twice
    sentinel = open_redis("redis+sentinel://127.0.0.1:26379/mymaster/3", max_connections=7)
    assert isinstance(sentinel.client, Redis) and not sentinel.queues
    pool = sentinel.client.connection_pool
    assert isinstance(pool, SentinelConnectionPool) and pool.service_name == "mymaster"
    assert pool.connection_kwargs["db"] == 3 and pool.max_connections == 7
    for conn in (single, cluster, sentinel):
        await conn.aclose()
