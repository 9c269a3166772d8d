"""The job store, approvals, results, usage, memory and every Lua script on a 3-primary Valkey cluster."""

from __future__ import annotations

import time

import pytest
from a2a.server.context import ServerCallContext
from a2a.types import ListTasksRequest, Task, TaskState, TaskStatus
from nats.aio.client import Client as NATS

from bus.contracts.approvals import pending_record
from bus.contracts.result import StepResult
from bus.jetstream.streams import ensure_streams
from bus.redis_client import FailoverCluster, redis_client
from bus.settings import BusSettings, RedisSettings
from crews.errors import JobError
from crews.jobs.approvals import decide, list_approvals
from crews.jobs.store import DEADLINES, JOBS_INDEX, RedisJobStore, job_keys
from crews.plan.planner import plan
from crews.spec.load import load_crew_text
from inference.errors import BudgetExceeded
from inference.results import Usage
from roles.a2a.tasks import RedisTaskStore
from roles.step.memory import SharedMemory
from roles.step.results import ResultStore
from roles.step.usage import RedisUsage
from tests.cluster.servers import ValkeyCluster

pytestmark = pytest.mark.slow

CREW = """
name: {name}
roles: {{w: {{role: W, goal: G}}}}
tasks: {{a: {{description: D, expected_output: E, agent: w}}, b: {{description: D, expected_output: E, agent: w}}}}
"""


def test_a_cluster_url_or_the_setting_makes_a_cluster_client(valkey_cluster: ValkeyCluster) -> None:
    by_scheme = redis_client(RedisSettings(redis_url=valkey_cluster.url))
    host = valkey_cluster.url.removeprefix("redis+cluster://").split(",")[0]
    by_setting = redis_client(RedisSettings(redis_url=f"redis://{host}/0", redis_cluster=True))
    single = redis_client(RedisSettings(redis_url=f"redis://{host}/0"))
    assert isinstance(by_scheme, FailoverCluster) and isinstance(by_setting, FailoverCluster)
    assert not isinstance(single, FailoverCluster)
    assert len(by_scheme.startup_nodes) == 3  # every node the URL lists


async def test_a_jobs_keys_share_one_slot_and_the_indexes_do_not_need_to(
    cluster_redis: FailoverCluster, valkey_cluster: ValkeyCluster
) -> None:
    keys = job_keys("j-slot")
    slots = {await cluster_redis.cluster_keyslot(key) for key in keys.model_dump().values()}
    assert len(slots) == 1
    spread = {await cluster_redis.cluster_keyslot(key) for key in (keys.state, JOBS_INDEX, DEADLINES)}
    assert len(spread) == 3  # the store must never touch them in one command: it would be CROSSSLOT


async def test_a_job_runs_through_every_store_script_on_the_cluster(cluster_redis: FailoverCluster) -> None:
    store = RedisJobStore(cluster_redis)
    names = [f"crew-{i}" for i in range(12)]  # spread over the three primaries
    for name in names:
        await store.save_crew(load_crew_text(CREW.format(name=name), "c.yaml"))
    assert await store.list_crews() == sorted(names)  # SCAN on every primary

    spec = await store.get_crew("crew-0")
    record = await store.create("j1", "crew-0", {"x": 1}, deadline_s=0.01)
    assert (record.status, record.inputs) == ("submitted", {"x": 1})
    assert (await store.create("j1", "crew-0", {"x": 2}, deadline_s=60)).inputs == {"x": 1}  # _CREATE once
    assert await store.claim_idempotency_key("k", "j1") == "j1"
    assert await store.claim_idempotency_key("k", "j2") == "j1"

    await store.start("j1", plan(spec, {}), spec, "")
    await store.set_step_state("j1", "a", "dispatched")
    await store.set_step_state("j1", "a", "completed", seq=9)
    await store.set_step_state("j1", "a", "working", seq=5)  # an older event handled later
    assert (await store.get("j1")).steps == {"a": "completed", "b": "pending"}
    assert "j1" in await store.overdue(time.time() + 1)

    keys = job_keys("j1")
    results = ResultStore(cluster_redis, keys.results)
    _, ours = await results.record("a", StepResult(output="first", role="w"))
    again, ours_again = await results.record("a", StepResult(output="second", role="w"))
    assert (ours, ours_again, again.output) == (True, False, "first")
    await SharedMemory(cluster_redis, keys.memory).write("note", "kept")
    usage = RedisUsage(cluster_redis, keys.usage, limit=25)
    await usage.record("j1", "w", Usage(input_tokens=10, output_tokens=5, cost_usd=0.25))
    await usage.record("j1", "w", Usage(input_tokens=7, output_tokens=3))
    with pytest.raises(BudgetExceeded):
        await usage.check("j1", "w")

    assert await store.finish("j1", "completed", output="done", owner="")  # the owner read: one pipeline
    assert not await store.finish("j1", "failed")  # _FINISH once (the owner from the script)
    record = await store.get("j1")
    assert (record.status, record.output) == ("completed", "done")
    assert (await store.results("j1"))["a"].output == "first"
    assert await store.memory("j1") == {"note": "kept"}
    role_usage = (await store.usage("j1"))["w"]
    assert (role_usage.input_tokens, role_usage.output_tokens, role_usage.calls) == (17, 8, 2)
    assert role_usage.cost_usd == pytest.approx(0.25)
    assert await store.overdue(time.time() + 1) == ["j1"]  # ended: due at once, until its end is announced
    await store.forget_deadline("j1")
    assert await store.overdue(time.time() + 1) == []
    assert 0 < await cluster_redis.ttl(keys.usage) <= store.job_ttl_s
    assert [r.id for r in await store.list_jobs()] == ["j1"]

    await store.set_worker_counts({"crew-0/w": 2})  # a transaction on one key
    assert await store.worker_counts() == {"crew-0/w": 2}


async def test_an_approval_is_decided_once_on_the_cluster(
    cluster_redis: FailoverCluster, cluster_nc: NATS
) -> None:
    js = cluster_nc.jetstream()
    await ensure_streams(js, BusSettings())
    store = RedisJobStore(cluster_redis)
    await store.create("j2", "c", {}, deadline_s=60)
    pending = pending_record(step="a", role="w", tool="send_mail", call_id="call-1", arguments={"to": "x"})
    await cluster_redis.hsetnx(job_keys("j2").approvals, pending.id, pending.model_dump_json())

    decided = await decide(js, store, "j2", pending.id, approve=True, comment="fine")

    assert (decided.status, decided.comment) == ("approved", "fine")
    with pytest.raises(JobError, match="already approved"):
        await decide(js, store, "j2", pending.id, approve=False)
    assert [a.status for a in await list_approvals(store, "j2")] == ["approved"]


async def test_a_role_agents_tasks_are_saved_and_listed_in_one_slot(cluster_redis: FailoverCluster) -> None:
    tasks = RedisTaskStore(cluster_redis, "crew.role")
    context = ServerCallContext()
    for i in range(3):
        task = Task(id=f"t{i}", context_id="c", status=TaskStatus(state=TaskState.TASK_STATE_WORKING))
        await tasks.save(task, context)  # one MULTI over the task and the agent's index
    listed = await tasks.list(ListTasksRequest(), context)
    assert sorted(t.id for t in listed.tasks) == ["t0", "t1", "t2"]
    assert (await tasks.get("t1", context)) is not None
