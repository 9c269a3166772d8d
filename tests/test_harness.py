"""The harness itself: servers are real, and survive SIGKILL + restart on the same store."""

from __future__ import annotations

import nats
import redis.asyncio as aioredis

from tests.servers import ManagedServer


async def test_redis_keeps_data_across_kill_and_restart(own_redis_server: ManagedServer) -> None:
    client = aioredis.Redis.from_url(own_redis_server.url)
    await client.set("k", "v")
    await client.aclose()
    own_redis_server.kill()
    own_redis_server.restart()
    client = aioredis.Redis.from_url(own_redis_server.url)
    assert await client.get("k") == b"v"
    await client.aclose()


async def test_nats_jetstream_is_enabled(nats_server: ManagedServer) -> None:
    nc = await nats.connect(nats_server.url)
    info = await nc.jetstream().account_info()
    assert info.limits is not None
    await nc.close()
