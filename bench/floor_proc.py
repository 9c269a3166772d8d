"""The floor's processes: a step's hops with bare nats-py, redis-py and httpx, and no crews code.

    python -m bench.floor_proc coordinator --nats URL --redis URL
    python -m bench.floor_proc worker --role researcher --nats URL --redis URL --llm URL

The same process shape as crews (one coordinator, one worker per role), the
same servers, the same hops per step, each done the plainest way:

- driver: ``HSET`` the job's ``created_at`` and ``ZADD`` it to the running
  set, publish the submission to JetStream with a ``Nats-Msg-Id``;
- coordinator: pull the submission (durable consumer), publish step 1's
  dispatch (``Nats-Msg-Id``), ack;
- worker: pull the step (durable consumer), one chat completion over HTTP
  (``httpx``) to the benchmark LLM, ``HSETNX`` the result, publish the
  step's event (``Nats-Msg-Id``), ack;
- coordinator: pull the event, publish the next dispatch, or ``HSET``
  ``finished_at`` and ``ZREM`` the job after the last step; ack.

Payloads are small JSON documents; acks are plain (not confirmed). That is
the floor: what the design's hops cost in Python with the same clients.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from collections.abc import Awaitable, Callable

import httpx
import nats
import redis.asyncio as aioredis
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType, StreamConfig

ROLES = ("researcher", "writer", "reviewer")
JOBS, TASKS, EVENTS = "FLOOR_JOBS", "FLOOR_TASKS", "FLOOR_EVENTS"
RUNNING = "floor:running"
MODEL = "crews-local"  # the name the benchmark LLM serves (inference.settings.DEFAULT_MODEL)
READY = "floor ready"
MESSAGES = [
    {"role": "system", "content": "You are Researcher. Your goal: find facts about honey bees."},
    {"role": "user", "content": "Research honey bees. " * 20},
]


def job_key(job: str) -> str:
    return f"floor:job:{job}"


async def ensure_streams(js: JetStreamContext) -> None:
    """The floor's three streams and its durable consumers (idempotent; the driver makes them first)."""
    for name, subject, retention in (
        (JOBS, "floor.jobs", RetentionPolicy.WORK_QUEUE),
        (TASKS, "floor.tasks.>", RetentionPolicy.WORK_QUEUE),
        (EVENTS, "floor.events.>", RetentionPolicy.LIMITS),
    ):
        config = StreamConfig(
            name=name,
            subjects=[subject],
            retention=retention,
            storage=StorageType.FILE,
            duplicate_window=120.0,
        )
        await js.add_stream(config)
    for stream_name, durable, subject in [
        (JOBS, "floor-jobs", "floor.jobs"),
        (EVENTS, "floor-events", "floor.events.>"),
        *((TASKS, f"floor-{role}", f"floor.tasks.{role}") for role in ROLES),
    ]:
        consumer = ConsumerConfig(durable_name=durable, filter_subject=subject, ack_policy=AckPolicy.EXPLICIT)
        await js.add_consumer(stream_name, consumer)


async def pull_forever(
    js: JetStreamContext, stream: str, durable: str, handle: Callable[[Msg], Awaitable[None]], batch: int
) -> None:
    """``batch`` loops on one pull subscription, each: fetch one message, handle it, ack it; again.

    ``fetch(1)``, not ``fetch(batch)``: nats-py's batch fetch can hold a
    message that reaches an idle consumer until the request expires
    (bench/FINDINGS.md).
    """
    sub = await js.pull_subscribe_bind(durable, stream=stream)

    async def one_at_a_time() -> None:
        while True:
            try:
                [msg] = await sub.fetch(1, timeout=1.0)
            except (NatsTimeout, TimeoutError):
                continue
            await handle(msg)
            await msg.ack()

    await asyncio.gather(*(one_at_a_time() for _ in range(batch)))


async def coordinator(nats_url: str, redis_url: str) -> None:
    nc = await nats.connect(nats_url, name="floor-coordinator")
    js = nc.jetstream()
    r = aioredis.Redis.from_url(redis_url, decode_responses=True)

    async def dispatch(job: str, step: int) -> None:
        body = json.dumps({"job": job, "step": step}).encode()
        await js.publish(f"floor.tasks.{ROLES[step]}", body, headers={"Nats-Msg-Id": f"{job}:{step}"})

    async def on_submission(msg: Msg) -> None:
        await dispatch(json.loads(msg.data)["job"], 0)

    async def on_event(msg: Msg) -> None:
        event = json.loads(msg.data)
        job, step = event["job"], int(event["step"])
        if step + 1 < len(ROLES):
            await dispatch(job, step + 1)
            return
        async with r.pipeline(transaction=False) as pipe:
            pipe.hset(job_key(job), "finished_at", time.time())
            pipe.zrem(RUNNING, job)
            await pipe.execute()

    await _serve(
        pull_forever(js, JOBS, "floor-jobs", on_submission, 4),
        pull_forever(js, EVENTS, "floor-events", on_event, 8),
    )


async def worker(role: str, nats_url: str, redis_url: str, llm_url: str, concurrency: int) -> None:
    nc = await nats.connect(nats_url, name=f"floor-{role}")
    js = nc.jetstream()
    r = aioredis.Redis.from_url(redis_url, decode_responses=True)
    http = httpx.AsyncClient(base_url=llm_url, timeout=30.0)

    async def on_step(msg: Msg) -> None:
        work = json.loads(msg.data)
        job, step = work["job"], work["step"]
        reply = await http.post(
            "/chat/completions", json={"model": MODEL, "messages": MESSAGES, "max_tokens": 200}
        )
        reply.raise_for_status()
        text = reply.json()["choices"][0]["message"]["content"]
        await r.hsetnx(f"{job_key(job)}:results", str(step), json.dumps({"output": text, "role": role}))
        body = json.dumps({"job": job, "step": step, "state": "completed"}).encode()
        await js.publish(f"floor.events.{job}", body, headers={"Nats-Msg-Id": f"{job}:{step}:completed"})

    await _serve(pull_forever(js, TASKS, f"floor-{role}", on_step, concurrency))


async def _serve(*loops: Awaitable[None]) -> None:
    """Run the loops until SIGTERM, after printing the ready line."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    tasks = [asyncio.ensure_future(loop) for loop in loops]
    sys.stdout.write(f"{READY}\n")
    sys.stdout.flush()
    await asyncio.wait([*tasks, asyncio.ensure_future(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
    for task in tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    for task in tasks:  # a loop that ended by itself failed: say why
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise SystemExit(f"floor loop failed: {task.exception()!r}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor_proc", description=__doc__)
    parser.add_argument("kind", choices=("coordinator", "worker"))
    parser.add_argument("--role", choices=ROLES, default=ROLES[0])
    parser.add_argument("--nats", required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--llm", default="")
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args(argv)
    if args.kind == "coordinator":
        asyncio.run(coordinator(args.nats, args.redis))
    else:
        asyncio.run(worker(args.role, args.nats, args.redis, args.llm, args.concurrency))


if __name__ == "__main__":
    main()
