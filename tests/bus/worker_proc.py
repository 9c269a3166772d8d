"""A worker process for bus tests: runs a WorkLoop whose handler records results write-once in Redis.

Usage: python -m tests.bus.worker_proc <nats_url> <redis_url> <stream> <consumer> <name>

Message payload (JSON): {"id": str, "mode": "ok" | "block_first"}.
"block_first" blocks forever on its first delivery, after announcing
``started`` on ``test.started.<id>`` — the test SIGKILLs the process then.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys

import nats
import redis.asyncio as aioredis

from bus.jetstream.work_loop import Delivery, WorkLoop


async def main(nats_url: str, redis_url: str, stream: str, consumer: str, name: str) -> None:
    nc = await nats.connect(nats_url)
    db = aioredis.Redis.from_url(redis_url, decode_responses=True)

    async def handle(delivery: Delivery) -> None:
        body = json.loads(delivery.data)
        await db.rpush(f"handled:{body['id']}", f"{name}:{delivery.attempt}")
        if body["mode"] == "block_first" and delivery.attempt == 1:
            await nc.publish(f"test.started.{body['id']}", name.encode())
            await nc.flush()
            await asyncio.Event().wait()
        if await db.hsetnx("results", body["id"], name):
            await db.incr(f"writes:{body['id']}")
        await nc.publish(f"test.done.{body['id']}", name.encode())

    loop = WorkLoop(nc.jetstream(), stream, consumer, handle, concurrency=2, grace_s=5)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, loop.stop)
    runner = asyncio.create_task(loop.run())
    await loop.wait_ready()
    print("worker ready", flush=True)
    await runner
    await db.aclose()
    await nc.drain()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
