"""The connection: every command passes ``Client.call`` (Redis errors become
``StoreUnavailable``: nothing above the store sees ``redis.RedisError``), and every script
passes ``Client.run`` (named KEYS and ARGV, checked; with a barrier, durably).

- The write client never retries on its own: a retried script after a lost reply could
  commit twice. Clients retry with their Idempotency-Key instead.
- Entries other services write are read leniently: the clients decode replies with
  ``errors="replace"`` (redisconn.py), so bytes that are not UTF-8 arrive as U+FFFD instead
  of failing the whole reply (which stalled a channel's reader on one entry). Whether an
  entry is an item is then decided by ``events.entry_item``.
- Redis Cluster and Sentinel (the clients are built in redisconn.py): every script, pipeline
  and XREAD names keys of one slot (``{channel}`` or ``{auth}``; tests/test_cluster_slots.py
  checks each), and nothing lists keys (no SCAN, no KEYS).
- Acknowledged means durable when ``Ack`` asks (ack.py): an editor's write runs in one
  pipeline with ``WAIT``/``WAITAOF``, on one connection (they count that connection's
  writes), on a cluster on the node of the channel's slot. The sweeper's claimed commits
  do not wait: one lost in a failover left its schedule entry behind, so it is redone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.exceptions import AskError, NoScriptError, RedisClusterException, RedisError

from ticker.domain.ack import APPLIED, Ack, fsync_problem
from ticker.domain.errors import StoreUnavailable
from ticker.store import scripts
from ticker.store.redisconn import RedisConn, open_redis
from ticker.store.scripts import Script

# How long a request waits for a free Redis connection before it is answered 503.
POOL_WAIT_S = 5.0


class Call:
    """Around every command: Redis errors become ``StoreUnavailable``; with a ``gate``
    (cluster, Sentinel), wait up to ``POOL_WAIT_S`` for one of the connections first.
    A class, reused, because a generator-based context manager per command showed up
    in the publish profile."""

    __slots__ = ("_gate",)

    def __init__(self, gate: asyncio.Semaphore | None) -> None:
        self._gate = gate

    async def __aenter__(self) -> None:
        if self._gate is not None:
            try:
                async with asyncio.timeout(POOL_WAIT_S):
                    await self._gate.acquire()
            except TimeoutError:
                raise StoreUnavailable("Redis is unavailable (no free connection)") from None

    async def __aexit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if self._gate is not None:
            self._gate.release()
        # RedisClusterException (no slot map yet, no node reachable) is not a RedisError.
        if isinstance(exc, (RedisError, RedisClusterException, OSError)):
            raise StoreUnavailable(f"Redis is unavailable ({type(exc).__name__})") from exc


# Error mapping only, for a connection of its own (a tail's).
WRAPPED = Call(None)


class Client:
    """One process's connection to Redis, shared by every part of the store."""

    def __init__(self, url: str, *, max_connections: int = 64, ack: Ack = APPLIED) -> None:
        self.url = url
        self.ack = ack
        # One server: a client over a blocking pool. A cluster (redis+cluster://): one
        # RedisCluster, max_connections per node. Sentinel: the primary's client.
        self.conn: RedisConn = open_redis(url, max_connections=max_connections)
        self.redis: Any = self.conn.client
        # Cluster and Sentinel pools raise at once when they are exhausted; this queues
        # callers instead, as the blocking pool does (a command holds at most one
        # connection per node, so the per-node cap is never reached).
        self.call = Call(None if self.conn.queues else asyncio.Semaphore(max_connections))
        self.scripts: dict[str, Script] = {n: scripts.load(n) for n in scripts.NAMES}
        # redis-py's registered scripts: EVALSHA, and SCRIPT LOAD on NOSCRIPT.
        self.runners: dict[str, Any] = {
            n: self.redis.register_script(s.source) for n, s in self.scripts.items()
        }

    async def run(
        self,
        name: str,
        keys: dict[str, str],
        args: dict[str, Any] | None = None,
        *,
        barrier: str | None = None,
    ) -> Any:
        """Run a script with named KEYS and ARGV (checked first: ``ScriptArgumentError``).
        With a ``barrier`` key (of the same slot), a write answered only once ``self.ack``
        is met."""
        script = self.scripts[name]
        key_list, arg_list = script.call(keys, args)
        runner = self.runners[name]
        if barrier is None or not self.ack.wanted:
            async with self.call:
                return await runner(keys=key_list, args=arg_list)
        evalsha = ("EVALSHA", runner.sha, len(key_list), *key_list, *arg_list)
        return (await self.durably(barrier, evalsha, source=script.source))[0]

    async def durably(
        self, barrier: str, *commands: tuple[Any, ...], source: str | None = None
    ) -> list[Any]:
        """``commands``, then a write of ``barrier`` and ``WAIT``/``WAITAOF`` in one
        pipeline: one connection, so the wait covers these writes (a cluster pipeline
        sends a node's commands on one connection; each is sent to the barrier's node).
        The barrier write makes the wait cover everything the primary had before it,
        also when ``commands`` wrote nothing (a replayed Idempotency-Key, a kill of a
        killed item): such an answer is then as durable as the first. Returns their
        replies; ``NotDurable`` when ``self.ack`` is not met. ``source``: the script
        that an ``EVALSHA`` among ``commands`` runs, loaded when Redis lacks it."""
        for _ in range(3):
            replies = await self._pipeline_and_wait(barrier, commands)
            # NOSCRIPT, or a cluster redirection (MOVED is an AskError): nothing ran.
            missing = any(isinstance(r, NoScriptError) for r in replies)
            moved = any(isinstance(r, AskError) for r in replies)
            if not (missing or moved):
                break
            async with self.call:
                if missing and source is not None:
                    await self.redis.script_load(source)
                if moved:
                    await self.redis.aclose()  # reconnects and re-reads the slot map
        else:
            raise StoreUnavailable("Redis is unavailable (the channel's slot is moving)")
        for reply in replies[:-1]:
            if isinstance(reply, Exception):
                async with WRAPPED:
                    raise reply  # a command failed: StoreUnavailable, as for any command
        self.ack.check(replies[-1])
        return list(replies[: len(commands)])

    async def _pipeline_and_wait(
        self, barrier: str, commands: Sequence[tuple[Any, ...]]
    ) -> list[Any]:
        async with self.call:
            target: dict[str, Any] = {}
            if self.conn.cluster:
                await self.redis.initialize()
                target = {"target_nodes": self.redis.get_node_from_key(barrier)}
            async with self.redis.pipeline(transaction=False) as pipe:
                for command in commands:
                    pipe.execute_command(*command, **target)
                pipe.execute_command("SET", barrier, "1", **target)
                pipe.execute_command(*self.ack.command(), **target)
                if self.conn.cluster:
                    # A redirected command would be sent again on another connection,
                    # out of the wait's reach: durably sends them all again instead.
                    return list(await pipe.execute(raise_on_error=False, allow_redirections=False))
                return list(await pipe.execute(raise_on_error=False))

    async def settle(self, barrier: str) -> None:
        """Wait until what the primary has now meets ``self.ack`` (nothing when it asks for
        nothing): for an answer that writes nothing, so rests on an earlier write."""
        if self.ack.wanted:
            await self.durably(barrier)

    async def ping(self) -> None:
        async with self.call:
            await self.redis.ping()

    async def ack_problem(self) -> str | None:
        """Why this Redis cannot give what ``self.ack`` asks for, for a start-up error;
        None when it can (replicas are counted per write: they may be reconnecting)."""
        if not self.ack.fsync:
            return None
        async with self.call:
            info = await self.redis.info()
        # A cluster answers for each node; every primary must have WAITAOF and an AOF.
        nodes = [info] if "redis_version" in info else list(info.values())
        for node in nodes:
            problem = fsync_problem(node)
            if problem:
                return problem
        return None

    def every_primary(self) -> dict[str, Any]:
        # Each primary of a cluster has its own AOF; one server or Sentinel: the primary.
        return {"target_nodes": "primaries"} if self.conn.cluster else {}

    async def close(self) -> None:
        await self.conn.aclose()
