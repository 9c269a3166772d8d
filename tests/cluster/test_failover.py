"""Jobs across real processes on a NATS cluster and a Valkey cluster survive losing a node of each.

The coordinator and two role workers run as ``crews`` processes against the
3-node NATS cluster (streams with 3 replicas) and the 3-primary Valkey cluster.
While jobs run, the NATS server leading the steps stream is SIGKILLed, then
the Valkey primary holding a running job's keys; more jobs are submitted after
each loss. Every job completes with its own output, and no step is recorded
(result or COMPLETED event) twice.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import pytest
from a2a.types import TaskState
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError

from bus import subjects
from bus.redis_client import FailoverCluster
from crews.jobs.control import submit_job
from crews.jobs.store import RedisJobStore, job_keys
from inference.testing.script import Script
from inference.testing.server import ScriptedServer
from tests.cluster.servers import NatsCluster, ValkeyCluster, eventually
from tests.e2e.stack import Stack, job_events, register

pytestmark = pytest.mark.slow

RELAY = """
name: relay
roles:
  first: {role: First, goal: Start it}
  second: {role: Second, goal: Finish it}
tasks:
  one: {description: Start., expected_output: A start., agent: first}
  two: {description: Finish., expected_output: The end., agent: second}
"""
STEPS = ("one", "two")


@pytest.fixture
def llm() -> Iterator[ScriptedServer]:
    script = Script.model_validate({"default": [{"echo": "{step} of {job}", "latency_s": 0.3}]})
    with ScriptedServer(script) as server:
        yield server


@pytest.fixture
def stack(nats_cluster: NatsCluster, valkey_cluster: ValkeyCluster, llm: ScriptedServer) -> Iterator[Stack]:
    env = {"CREWS_STREAM_REPLICAS": "3", "CREWS_ACK_WAIT_S": "3", "CREWS_REDIS_FAILOVER_S": "30"}
    running = Stack(nats_cluster.url, valkey_cluster.url, llm.url, extra_env=env)
    try:
        yield running
    finally:
        running.stop_all()
        nats_cluster.restore()  # the servers the test killed come back for the tests after it
        valkey_cluster.restore()


async def stream_leader(nc: NATS, stream: str) -> str:
    """The server leading ``stream`` now ('' while it has none)."""
    try:
        info = await nc.jetstream(timeout=1.0).stream_info(stream)
    except (NatsError, TimeoutError):
        return ""
    return (info.cluster.leader if info.cluster else None) or ""


async def test_jobs_complete_once_while_a_nats_node_and_a_valkey_primary_die(
    stack: Stack,
    llm: ScriptedServer,
    cluster_nc: NATS,
    cluster_redis: FailoverCluster,
    nats_cluster: NatsCluster,
    valkey_cluster: ValkeyCluster,
) -> None:
    store = RedisJobStore(cluster_redis)
    js = cluster_nc.jetstream()
    stack.coordinator()
    stack.worker("relay", "first")
    stack.worker("relay", "second")
    crew = await register(store, RELAY)
    info = await js.stream_info(subjects.TASKS_STREAM)
    assert (
        info.config.num_replicas == 3 and info.cluster is not None and len(info.cluster.replicas or []) == 2
    )

    async def submit(count: int) -> list[str]:
        return [(await submit_job(js, store, crew, {})).id for _ in range(count)]

    jobs = await submit(4)
    await llm.wait_for_requests(2)  # steps are running

    leader = await stream_leader(cluster_nc, subjects.TASKS_STREAM)
    nats_cluster.node(leader).kill()
    await eventually(
        lambda: _led_by_another(cluster_nc, leader), f"a new leader of {subjects.TASKS_STREAM} after {leader}"
    )
    jobs += await submit(4)
    asked = len(llm.requests())
    await llm.wait_for_requests(asked + 2)  # the steps move on after the NATS loss

    running = [job for job in jobs if not (await store.get(job)).terminal]
    primary = valkey_cluster.primary_of(job_keys(running[-1]).state)
    replica = valkey_cluster.replica_of(primary)
    primary.kill()
    await eventually(
        lambda: asyncio.to_thread(lambda: valkey_cluster.is_primary(replica) and valkey_cluster.healthy()),
        f"{replica.name} to take over from {primary.name}",
    )
    jobs += await submit(4)

    async def all_ended() -> bool:
        return all([(await store.get(job)).terminal for job in jobs])

    await eventually(all_ended, "every job to end", timeout=90)

    for job in jobs:
        record = await store.get(job)
        assert (record.status, record.output) == ("completed", f"two of {job}"), record.reason
        assert await cluster_redis.hlen(job_keys(job).results) == len(STEPS)
        completed = Counter(
            e.status_update.task_id
            for e in await job_events(js, job, timeout=30)
            if e.status_update.status.state == TaskState.TASK_STATE_COMPLETED
        )
        assert completed == Counter({f"{job}.{step}": 1 for step in STEPS} | {job: 1})


async def _led_by_another(nc: NATS, old: str) -> bool:
    return (await stream_leader(nc, subjects.TASKS_STREAM)) not in ("", old)
