"""The Redis client of every crews process: one Redis server, or a Redis (Valkey) cluster.

``redis_client(settings)`` is the one place a client is made (the API, the
coordinator, the role workers, ``crews up``). With ``CREWS_REDIS_CLUSTER=true``
or a ``redis+cluster://`` (``rediss+cluster://``) URL it is redis-py's asyncio
``RedisCluster``, started from the URL's node (several nodes: comma-separated
``host:port`` in the URL), which learns the others and their slots itself.

In a cluster, one job's keys share one slot (``crews:{job:<id>}:...``); keys
that are not a job's (``crews:jobs``, ``crews:jobs:deadlines``,
``crews:crew:<name>``, ``crews:idem:<key>``, ``crews:stack:workers``) are only
ever written alone, never in one transaction or script with a job's keys.

When a primary dies, its replica takes over after the cluster's node timeout.
Meanwhile commands to its slots fail; the cluster client retries each one
(and each plain pipeline, whole: ``FailoverPipeline``) with a growing pause
for up to ``CREWS_REDIS_FAILOVER_S`` seconds, so a failover is a pause for
the processes, not an error. The scripts and
commands crews sends are safe to repeat (write-once results, sequence-checked
states, idempotent finishes); usage increments are the exception (a retry
after a lost reply may count a call twice).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, TypeAlias
from urllib.parse import urlsplit, urlunsplit

import hiredis
import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import (
    ClusterDownError,
    DataError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bus.settings import RedisSettings

RedisClient: TypeAlias = aioredis.Redis | RedisCluster
log = logging.getLogger(__name__)

# What a failover looks like from the client: the dead primary refuses or times out, then the
# cluster reports its slots down or unserved until the replica is promoted.
FAILOVER_ERRORS = (
    RedisConnectionError,
    RedisTimeoutError,
    ClusterDownError,
    SlotNotCoveredError,
    TryAgainError,
)
_FIRST_PAUSE_S, _LONGEST_PAUSE_S = 0.05, 1.0


class PackedConnection(Connection):  # type: ignore[misc]
    """A TCP connection whose commands are written by hiredis (C): ~5 x less CPU a command than redis-py's
    asyncio ``pack_command`` (Python), which, unlike its synchronous client, does not use hiredis to write.

    Arguments as redis-py takes them: ``bytes`` (or a buffer), ``str`` (UTF-8), ``int``, ``float``; anything else is
    a ``DataError``, as there."""

    def pack_command(self, *args: Any) -> list[bytes]:
        if isinstance(args[0], str):  # a command name with words in it ("CONFIG GET"): one argument each
            args = tuple(args[0].encode().split()) + args[1:]
        elif b" " in args[0]:
            args = tuple(args[0].split()) + args[1:]
        for arg in args:
            if isinstance(arg, (bytearray, memoryview)):
                args = tuple(bytes(a) if isinstance(a, (bytearray, memoryview)) else a for a in args)
            elif isinstance(arg, bool) or not isinstance(arg, (bytes, str, int, float)):
                raise DataError(
                    f"Invalid input of type: {type(arg).__name__!r}. Convert to a bytes, string, int or float first."
                )
        return [hiredis.pack_command(args)]


def redis_client(settings: RedisSettings) -> RedisClient:
    """A client for ``settings.redis_url`` (replies decoded as text): a cluster client when it names one.

    A ``redis://`` server's connections are ``PackedConnection``; ``rediss://`` and ``unix://`` URLs
    choose redis-py's own (TLS, socket) connections."""
    if (
        not settings.cluster
    ):  # a command on a dropped connection (a restarted server) is retried, with backoff
        return aioredis.Redis.from_url(
            settings.redis_url,
            decode_responses=True,
            connection_class=PackedConnection,
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=8),
            retry_on_error=[redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
        )
    return cluster_client(settings.redis_url, failover_s=settings.redis_failover_s)


def cluster_client(url: str, *, failover_s: float = 30.0) -> FailoverCluster:
    """A ``RedisCluster`` from ``redis[s][+cluster]://[user:password@]host:port[,host:port...]``."""
    parts = urlsplit(url)
    scheme = parts.scheme.removesuffix("+cluster")
    if scheme not in ("redis", "rediss"):
        raise ValueError(f"{url!r} is not a redis:// or rediss:// URL (with or without +cluster)")
    auth, _, hosts = parts.netloc.rpartition("@")
    nodes = [_node(host) for host in hosts.split(",") if host]
    if not nodes:
        raise ValueError(f"{url!r} names no cluster node: give host:port")
    first = f"{auth}@{nodes[0].host}:{nodes[0].port}" if auth else f"{nodes[0].host}:{nodes[0].port}"
    single = urlunsplit((scheme, first, "", parts.query, ""))  # a cluster has database 0 only
    client: FailoverCluster = FailoverCluster.from_url(
        single, decode_responses=True, startup_nodes=nodes[1:] or None, socket_connect_timeout=2.0
    )
    client.failover_s = failover_s
    return client


def _node(host_port: str) -> ClusterNode:
    host, _, port = host_port.rpartition(":")
    if not host:
        host, port = port, "6379"
    return ClusterNode(host.strip("[]"), int(port))


class FailoverCluster(RedisCluster):  # type: ignore[misc]
    """``RedisCluster`` whose commands wait out a failover (up to ``failover_s``) instead of failing."""

    failover_s: float = 30.0

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.failover_s
        pause = _FIRST_PAUSE_S
        while True:
            try:
                return await super().execute_command(*args, **kwargs)
            except FAILOVER_ERRORS as exc:
                if loop.time() + pause > deadline:
                    raise
                log.warning("redis cluster: %s failed (%s), retrying in %.2f s", args[0], exc, pause)
                await asyncio.sleep(pause)  # a back-off between tries, not a synchronization
                pause = min(pause * 2, _LONGEST_PAUSE_S)

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> Any:
        """A plain pipeline that waits out a failover; transactions (WATCH, MULTI) as redis-py makes them."""
        if transaction:
            return super().pipeline(transaction, shard_hint)
        return FailoverPipeline(self, transaction)


class FailoverPipeline:
    """A cluster pipeline whose ``execute`` waits out a failover as the cluster's commands do.

    The queued commands are sent again on a fresh pipeline (they are as safe to repeat as single
    commands). Besides the failover errors, a ``RuntimeError`` is retried: uvloop raises it for a
    write on a connection the dead primary closed (redis-py drops that connection first).
    """

    def __init__(self, cluster: FailoverCluster, transaction: Any) -> None:
        self._cluster, self._transaction = cluster, transaction
        self._calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        def queue(*args: Any, **kwargs: Any) -> FailoverPipeline:
            self._calls.append((name, args, kwargs))
            return self

        return queue

    async def __aenter__(self) -> FailoverPipeline:
        return self

    async def __aexit__(self, *_: object) -> None:
        self._calls = []

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._cluster.failover_s
        pause = _FIRST_PAUSE_S
        while True:
            pipe = RedisCluster.pipeline(self._cluster, self._transaction)
            for name, args, kwargs in self._calls:
                getattr(pipe, name)(*args, **kwargs)
            try:
                replies: list[Any] = await pipe.execute(raise_on_error=raise_on_error)
            except (*FAILOVER_ERRORS, RuntimeError) as exc:
                if loop.time() + pause > deadline:
                    raise
                log.warning("redis cluster: a pipeline failed (%s), retrying in %.2f s", exc, pause)
                await asyncio.sleep(pause)  # a back-off between tries, not a synchronization
                pause = min(pause * 2, _LONGEST_PAUSE_S)
            else:
                self._calls = []
                return replies
