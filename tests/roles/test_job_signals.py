"""A worker hears every job's signals through one subscription, and each stop reaches only its job's step."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
import redis.asyncio as aioredis
from a2a.types import TaskState, TaskStatus, TaskStatusUpdateEvent
from nats.aio.client import Client as NATS

from bus import subjects
from bus.jetstream.events import publish_event
from crews.local.servers import ServerProcess, free_port, nats_server_binary
from inference.client import LLMPool
from inference.testing.script import Script
from inference.testing.server import ScriptedServer
from roles.tools.registry import MEMORY_READ, Tool, ToolContext, ToolRegistry
from tests.roles.helpers import Workers, inference_settings, make_work, new_job, reason, states, step_events

WORKING, CANCELED = TaskState.TASK_STATE_WORKING, TaskState.TASK_STATE_CANCELED
WORKER_CONNECTION = "signals-test-worker"


class MonitoredNats:
    """A nats-server with its monitoring port, to read each connection's subscriptions (``/connz``)."""

    def __init__(self, store: Path) -> None:
        self.port, self.monitor_port = free_port(), free_port()
        argv = [nats_server_binary(), "-js", "-a", "127.0.0.1", "-p", str(self.port),
                "-m", str(self.monitor_port), "-sd", str(store)]  # fmt: skip
        self.process = ServerProcess("nats-server", argv, "Server is ready", self.port)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def subscriptions(self, connection: str) -> list[str]:
        url = f"http://127.0.0.1:{self.monitor_port}/connz?subs=1"
        with urllib.request.urlopen(url, timeout=5) as reply:
            found: dict[str, Any] = json.load(reply)
        (conn,) = [c for c in found["connections"] if c.get("name") == connection]
        return list(conn.get("subscriptions_list", []))


@pytest.fixture
def monitored_nats(tmp_path: Path) -> Iterator[MonitoredNats]:
    server = MonitoredNats(tmp_path / "jetstream")
    server.process.start()
    try:
        yield server
    finally:
        server.process.kill()


@pytest.fixture
async def worker_nc(monitored_nats: MonitoredNats) -> AsyncIterator[NATS]:
    client = await nats.connect(monitored_nats.url, name=WORKER_CONNECTION)
    try:
        yield client
    finally:
        await client.drain()


def holding_tool(started: dict[str, asyncio.Event], interrupted: set[str]) -> Tool:
    """A read-only tool that marks its job's call as started, and as interrupted when it is."""

    async def hold(context: ToolContext, arguments: dict[str, Any]) -> str:
        started[context.job].set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            interrupted.add(context.job)
            raise
        return "never"

    return Tool(
        name="wait", description="Hold.", parameters={"type": "object"}, function=hold, read_only=True
    )


async def stop_job(js: Any, redis_client: aioredis.Redis, job: str) -> None:
    """What the coordinator does when a job is cancelled: the state in Redis, then the job's status."""
    await redis_client.hset(f"crews:{{job:{job}}}:state", "status", "canceled")
    status = TaskStatusUpdateEvent(
        task_id=job, context_id=job, status=TaskStatus(state=TaskState.TASK_STATE_CANCELED)
    )
    await publish_event(js, job, status, f"{job}:job:canceled")


async def test_one_subscription_carries_every_jobs_signals_and_a_stop_ends_only_its_jobs_step(
    monitored_nats: MonitoredNats, worker_nc: NATS, redis_client: aioredis.Redis, llm: ScriptedServer
) -> None:
    first, second = new_job(), new_job()
    started = {first: asyncio.Event(), second: asyncio.Event()}
    interrupted: set[str] = set()
    rules = [{"role": "writer", "step": step, "replies": [{"tool_calls": [{"name": "wait"}]}, "never"]}
             for step in ("one", "two")]  # fmt: skip
    llm.set_script(Script.model_validate({"rules": rules}))
    async with LLMPool(inference_settings(llm.url)) as pool:
        workers = Workers(worker_nc, redis_client, pool)
        await workers.start("writer", tools=ToolRegistry([MEMORY_READ, holding_tool(started, interrupted)]))
        try:
            works = [make_work(first, "one", tools=["wait"]), make_work(second, "two", tools=["wait"])]
            for work in works:
                await workers.dispatch(work)
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in started.values())), 30)

            subscribed = await asyncio.to_thread(monitored_nats.subscriptions, WORKER_CONNECTION)
            signals = [s for s in subscribed if "signals" in s]
            assert signals == [subjects.JOB_SIGNALS]  # both steps listen, through the process's one

            await stop_job(workers.js, redis_client, first)
            events = await step_events(workers.js, works[0])
            assert states(events) == [WORKING, CANCELED]
            assert f"job {first} is canceled" in reason(events[-1])
            # a stop handed to both steps cancels both tools at once, long before the first's event is stored
            assert interrupted == {first}

            await stop_job(workers.js, redis_client, second)
            assert states(await step_events(workers.js, works[1])) == [WORKING, CANCELED]
            assert len(llm.requests()) == 2  # neither asked the LLM again: both were interrupted in the tool
        finally:
            await workers.stop()
