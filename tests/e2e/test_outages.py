"""Timers outlive outages: a coordinator still times jobs out after Redis or NATS was down (real servers
SIGKILLed and restarted on the same store)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import nats
import pytest
from nats.aio.client import Client as NATS

from crews.jobs.control import submit_job
from crews.jobs.store import RedisJobStore
from crews.spec.load import load_crew_text
from inference.testing.server import ScriptedServer
from tests.e2e.stack import Stack, job_events
from tests.servers import ManagedServer
from tests.waits import eventually

# A crew whose role has no worker: its job runs until its deadline.
IDLE = """
name: idle
roles: {doer: {role: Doer, goal: Do it}}
tasks: {only: {description: Do it., expected_output: Done., agent: doer}}
"""


@pytest.fixture
def stack(own_nats_server: ManagedServer, own_redis_server: ManagedServer) -> Iterator[Stack]:
    with ScriptedServer() as llm:
        running = Stack(
            own_nats_server.url,
            own_redis_server.url,
            llm.url,
            extra_env={"CREWS_TICK_S": "0.2", "CREWS_TICK_MAX_BACKOFF_S": "0.5"},
        )
        try:
            yield running
        finally:
            running.stop_all()


@pytest.fixture
async def clients(
    own_nats_server: ManagedServer, own_redis_server: ManagedServer
) -> AsyncIterator[tuple[NATS, RedisJobStore]]:
    nc = await nats.connect(own_nats_server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    store = RedisJobStore.from_url(own_redis_server.url)
    try:
        yield nc, store
    finally:
        await store.aclose()
        await nc.close()


async def running_job(stack: Stack, nc: NATS, store: RedisJobStore, timeout_s: float) -> str:
    spec = load_crew_text(IDLE, "crew.yaml")
    await store.save_crew(spec)
    job = (await submit_job(nc.jetstream(), store, spec.name, {}, timeout_s=timeout_s)).id
    await eventually(lambda: status_is(store, job, "running"), what="the coordinator took the job")
    return job


async def status_is(store: RedisJobStore, job: str, status: str) -> bool:
    return (await store.get(job)).status == status


async def past_deadline(store: RedisJobStore, job: str) -> None:
    """Wait until the job's own deadline has passed: the clock is what this test is about."""
    record = await store.get(job)
    assert record.timeout_s is not None
    await asyncio.sleep(max(0.0, record.created_at + record.timeout_s - time.time()) + 0.1)


async def test_deadline_fires_after_a_redis_outage(
    stack: Stack, own_redis_server: ManagedServer, clients: tuple[NATS, RedisJobStore]
) -> None:
    nc, store = clients
    coordinator = stack.coordinator()
    job = await running_job(stack, nc, store, timeout_s=2)
    await past_deadline(store, job)  # read the record while Redis is up
    mark = coordinator.mark()
    own_redis_server.kill()
    await asyncio.to_thread(coordinator.wait_for_line, "tick failed", 20, after=mark)
    own_redis_server.restart()

    events = await job_events(nc.jetstream(), job, timeout=30)

    record = await store.get(job)
    assert (record.status, record.reason) == ("failed", "timed out after 2 s")  # the job's own timeout
    assert events[-1].status_update.task_id == job
    mark = coordinator.mark()  # the timer keeps going: a second outage is survived as well
    own_redis_server.kill()
    await asyncio.to_thread(coordinator.wait_for_line, "tick failed", 20, after=mark)
    own_redis_server.restart()
    await asyncio.to_thread(coordinator.wait_for_line, "tick works again", 20, after=mark)


async def test_deadline_fires_and_is_announced_after_a_nats_outage(
    stack: Stack, own_nats_server: ManagedServer, clients: tuple[NATS, RedisJobStore]
) -> None:
    nc, store = clients
    coordinator = stack.coordinator()
    job = await running_job(stack, nc, store, timeout_s=2)
    mark = coordinator.mark()
    own_nats_server.kill()
    await asyncio.to_thread(coordinator.wait_for_line, "tick failed", 20, after=mark)
    await eventually(lambda: status_is(store, job, "failed"), what="the deadline fired while NATS is down")
    own_nats_server.restart()

    events = await job_events(nc.jetstream(), job, timeout=30)  # the end is announced once NATS is back

    record = await store.get(job)
    assert record.reason == "timed out after 2 s"
    ends = [e for e in events if e.status_update.task_id == job and e.status_update.status.state]
    assert ends[-1].status_update.status.message.parts[0].text == "timed out after 2 s"

    async def announced() -> bool:  # the deadline is forgotten just after the end is published
        return await store.overdue() == []

    await eventually(announced, what="nothing left for the next tick once the end is announced")
