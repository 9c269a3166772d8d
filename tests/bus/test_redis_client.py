"""The Redis client's connections: commands written by hiredis, the same bytes redis-py writes."""

from __future__ import annotations

import pytest
import redis.exceptions
from redis.asyncio.connection import Connection

from bus.redis_client import PackedConnection, redis_client
from bus.settings import RedisSettings
from tests.servers import ManagedServer

COMMANDS: list[tuple[object, ...]] = [
    ("GET", "k"),
    ("CONFIG GET", "maxmemory"),  # a command name of two words
    (b"CLIENT SETNAME", "crews"),
    ("HSET", "crews:{job:j}", "status", "running", "seq", 7, "cost", 0.0125, "n", -3, "big", 2**70),
    ("SET", "k", "é✓ \r\n unicode with CRLF", "EX", 60),
    ("SET", b"k\x00", b"\x00\xff\r\n binary"),
    ("SET", "k", memoryview(b"a view"), "GET"),
    ("SET", "k", bytearray(b"an array")),
    ("SET", "k", "x" * 20_000),  # over redis-py's buffer cutoff: it writes chunks, hiredis one buffer
    ("EVALSHA", "a" * 40, 2, "k1", "k2", "", 0, 1.5e-07),
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: str(args[0]))
def test_a_command_is_the_bytes_redis_py_writes(args: tuple[object, ...]) -> None:
    assert b"".join(PackedConnection().pack_command(*args)) == b"".join(Connection().pack_command(*args))


@pytest.mark.parametrize("bad", [None, True, ["a", "list"], {"a": "dict"}])
def test_what_redis_py_refuses_is_refused(bad: object) -> None:
    with pytest.raises(redis.exceptions.DataError, match="Invalid input of type"):
        Connection().pack_command("SET", "k", bad)
    with pytest.raises(redis.exceptions.DataError, match="Invalid input of type"):
        PackedConnection().pack_command("SET", "k", bad)


async def test_the_client_talks_to_a_real_server_through_packed_connections(
    redis_server: ManagedServer,
) -> None:
    client = redis_client(RedisSettings(redis_url=redis_server.url))
    try:
        assert client.connection_pool.connection_class is PackedConnection
        await client.flushall()
        await client.hset(
            "crews:{job:j}", mapping={"status": "running", "seq": 7, "cost": 0.0125, "name": "é✓"}
        )
        assert await client.hgetall("crews:{job:j}") == {
            "status": "running", "seq": "7", "cost": "0.0125", "name": "é✓"
        }  # fmt: skip
        with pytest.raises(redis.exceptions.DataError):
            await client.set("k", None)  # type: ignore[arg-type]
        async with client.pipeline(transaction=True) as pipe:  # the refused command sent nothing: in step
            pipe.set("k", "x" * 20_000).strlen("k").incrbyfloat("f", 0.5)
            assert await pipe.execute() == [True, 20_000, 0.5]
        script = client.register_script("return {KEYS[1], ARGV[1], redis.call('GET', KEYS[2])}")
        assert await script(keys=["a", "k"], args=["line\r\nbreak"]) == ["a", "line\r\nbreak", "x" * 20_000]
        assert "maxmemory" in await client.config_get("maxmemory")
    finally:
        await client.aclose()
