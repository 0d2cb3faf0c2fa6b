"""Redis clients from ``TICKER_REDIS_URL``: one server, a Redis Cluster, or the primary that
Redis Sentinel names. Connection construction only: client.py issues every command.

    redis://[user:pass@]host:port/db, rediss://..., unix:///path/redis.sock   one server
    redis+cluster://[user:pass@]host:port[,host:port...][?options]            a cluster
    rediss+cluster://...                                                      the same, TLS
    redis+sentinel://[user:pass@]host:port[,host:port...]/service[/db][?options]
    rediss+sentinel://...                                                     the same, TLS

For a cluster the hosts are seed nodes (any reachable one will do; the client discovers
the rest). For Sentinel they are the sentinels, and ``service`` is the monitored primary's
name; the credentials are the primary's (``sentinel_username=``/``sentinel_password=`` in
the query authenticate to the sentinels). Other query options are redis-py's, as for
``redis://``.

No client here retries a command on its own: a write script retried after a lost reply
could commit twice (callers retry with their Idempotency-Key). Cluster redirections
(``MOVED``/``ASK``/``TRYAGAIN``) are still followed: the command did not run.

What is retried is a PING, never a command: after Redis restarts, the pool still holds
connections to the old process, and the first command on each would fail *after* it was
sent (redis-py's own check on taking a connection from the pool does not see a closed
peer). So a connection idle for ``HEALTH_CHECK_S`` is PINGed as it leaves the pool
(``_Fresh``); if the PING fails, every idle connection is dropped and this one connects
afresh before the command is sent. A command that fails drops the idle ones too.
(redis-py's ``retry=`` cannot do this: in redis-py 8 the same ``Retry`` that would retry
the PING re-sends any command after a lost reply.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection, SSLConnection, parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ticker.domain.redisurl import CLUSTER, SENTINEL, SINGLE, RedisTarget, parse_redis_url

# A pooled connection idle this long is PINGed before its next command (see above).
HEALTH_CHECK_S = 1


@dataclass(slots=True)
class RedisConn:
    """A redis.asyncio client (``Redis`` or ``RedisCluster``) and what closes it."""

    client: Any
    kind: str
    # True when the pool makes a caller wait for a free connection (one server); the
    # cluster and Sentinel pools fail at once instead, so Store queues callers itself.
    queues: bool
    sentinel: Sentinel | None = None

    @property
    def cluster(self) -> bool:
        return self.kind == CLUSTER

    async def aclose(self) -> None:
        try:
            await self.client.aclose()
        finally:
            if self.sentinel is not None:
                await self.sentinel.aclose()


def open_redis(
    url: str, *, socket_timeout: float = 10.0, name: str | None = None, max_connections: int = 64
) -> RedisConn:
    """A client with timeouts, health checks and no blind retries; nothing connects yet.

    ``max_connections`` is per process for one server and Sentinel, per node for a cluster.
    """
    target = parse_redis_url(url)
    options: dict[str, Any] = {
        "decode_responses": True,
        # Other services write into our streams: a reply holding bytes that are not UTF-8
        # decodes with U+FFFD instead of failing whole (one such entry stalled a channel).
        "encoding_errors": "replace",
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": 5.0,
        "health_check_interval": HEALTH_CHECK_S,
        "retry": Retry(NoBackoff(), 0),
        "client_name": name,
        "max_connections": max_connections,
    }
    if not url.startswith("unix:"):
        options["socket_keepalive"] = True  # TCP only; a unix socket has no keepalive
    if target.kind == CLUSTER:
        seeds = [ClusterNode(host, port) for host, port in target.nodes[1:]]
        client = RedisCluster.from_url(target.url, startup_nodes=seeds, **options)
        return RedisConn(client, CLUSTER, queues=False)
    if target.kind == SENTINEL:
        return _sentinel(target, options)
    # The pool blocks (up to 5 s) when all connections are busy instead of failing at
    # once: a thousand readers connecting together queue for a moment, not get errors.
    pool = _FreshBlockingPool.from_url(url, timeout=5, **options)
    return RedisConn(aioredis.Redis.from_pool(pool), SINGLE, queues=True)


def _sentinel(target: RedisTarget, options: dict[str, Any]) -> RedisConn:
    kwargs: dict[str, Any] = dict(parse_url(target.url))
    kwargs.pop("host", None)
    kwargs.pop("port", None)
    tls = kwargs.pop("connection_class", None) is SSLConnection
    asking: dict[str, Any] = {
        k: options[k] for k in ("socket_timeout", "socket_connect_timeout", "retry")
    }
    for key in ("username", "password"):
        if f"sentinel_{key}" in kwargs:
            asking[key] = kwargs.pop(f"sentinel_{key}")
    if tls:
        kwargs["ssl"] = True
        asking.update({k: v for k, v in kwargs.items() if k.startswith("ssl")})
    sentinel = Sentinel(list(target.nodes), sentinel_kwargs=asking)  # type: ignore[no-untyped-call]
    # As with redis://, an option in the URL's query wins over ticker's default.
    client = sentinel.master_for(
        target.service, connection_pool_class=_FreshSentinelPool, **{**options, **kwargs}
    )
    return RedisConn(client, SENTINEL, queues=False, sentinel=sentinel)


class _Fresh:
    """Pool mixin: a connection leaves the pool checked (see the module docstring)."""

    async def ensure_connection(self, connection: AbstractConnection) -> None:
        await super().ensure_connection(connection)  # type: ignore[misc]
        try:
            await connection.check_health()  # type: ignore[no-untyped-call]  # a PING, if idle for health_check_interval
        except (RedisConnectionError, RedisTimeoutError, OSError):
            # Only a PING was sent, so connecting again is safe; the other idle
            # connections went to the same (old) server: drop them too.
            await self.disconnect(inuse_connections=False)  # type: ignore[attr-defined]
            await connection.disconnect()
            await connection.connect()  # type: ignore[no-untyped-call]

    async def release(self, connection: AbstractConnection) -> None:
        # redis-py disconnects a connection whose command failed: its server may be gone,
        # and with it every idle connection's.
        broken = not connection.is_connected
        await super().release(connection)  # type: ignore[misc]
        if broken:
            await self.disconnect(inuse_connections=False)  # type: ignore[attr-defined]


class _FreshBlockingPool(_Fresh, aioredis.BlockingConnectionPool):
    pass


class _FreshSentinelPool(_Fresh, SentinelConnectionPool):
    pass
