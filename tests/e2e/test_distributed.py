"""A crew job runs end to end across separate role processes (real NATS, Redis, scripted LLM over HTTP)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis.asyncio as aioredis
from a2a.types import TaskState
from nats.aio.client import Client as NATS

from crews.jobs.control import cancel_job, submit_job
from crews.jobs.store import RedisJobStore, job_keys
from inference.testing.script import Script
from inference.testing.server import ScriptedServer
from tests.e2e.stack import Stack, job_events, register, step_states, wait_for_step_state

SEQUENTIAL = """
name: pipeline
roles:
  researcher: {role: Researcher, goal: "Find facts about {topic}"}
  writer: {role: Writer, goal: "Write about {topic}"}
  reviewer: {role: Reviewer, goal: Check the article}
tasks:
  research: {description: "Research {topic}.", expected_output: Three facts., agent: researcher}
  write: {description: Write a paragraph., expected_output: One paragraph., agent: writer}
  review: {description: Review the paragraph., expected_output: The final text., agent: reviewer}
inputs:
  topic: {type: string}
"""

FANOUT = """
name: fan
process: parallel
roles:
  left: {role: Left analyst, goal: Look left}
  right: {role: Right analyst, goal: Look right}
  joiner: {role: Editor, goal: Join both views}
tasks:
  look_left: {description: Look left., expected_output: A view., agent: left}
  look_right: {description: Look right., expected_output: A view., agent: right}
  join: {description: Join the views., expected_output: One text., agent: joiner, context: [look_left, look_right]}
"""


@pytest.fixture
def llm() -> Iterator[ScriptedServer]:
    with ScriptedServer(Script()) as server:
        yield server


@pytest.fixture
def stack_env() -> dict[str, str]:
    return {"CREWS_ACK_WAIT_S": "2"}


def script(data: object) -> Script:
    return Script.model_validate(data)


async def test_sequential_crew_runs_across_three_worker_processes(
    stack: Stack, llm: ScriptedServer, nc: NATS, store: RedisJobStore
) -> None:
    llm.set_script(
        script(
            {
                "rules": [
                    {"role": "researcher", "replies": ["FACT-1 FACT-2 FACT-3"]},
                    {"role": "writer", "replies": ["A paragraph built on the facts."]},
                    {"role": "reviewer", "replies": ["APPROVED: A paragraph built on the facts."]},
                ]
            }
        )
    )
    stack.coordinator()
    for role in ("researcher", "writer", "reviewer"):
        stack.worker("pipeline", role)
    crew = await register(store, SEQUENTIAL)
    js = nc.jetstream()
    job = (await submit_job(js, store, crew, {"topic": "bees"})).id

    events = await job_events(js, job)

    record = await store.get(job)
    assert (record.status, record.output) == ("completed", "APPROVED: A paragraph built on the facts.")
    completed = [s for s, state in step_states(events, job) if state == TaskState.TASK_STATE_COMPLETED]
    assert completed == ["research", "write", "review"]
    by_step = {r.step: r for r in llm.requests()}
    assert "Research bees." in str(by_step["research"].body["messages"])
    assert "FACT-1 FACT-2 FACT-3" in str(by_step["write"].body["messages"])  # context flows to the next step
    usage = await store.usage(job)
    assert set(usage) == {"researcher", "writer", "reviewer"}
    assert all(u.input_tokens > 0 and u.output_tokens > 0 for u in usage.values())
    results = await store.results(job)
    assert len({r.worker for r in results.values()}) == 3
    assert all(r.duration_s is not None for r in results.values())  # for the step-latency metric


async def test_fan_out_branches_overlap_in_time(
    stack: Stack, llm: ScriptedServer, nc: NATS, store: RedisJobStore
) -> None:
    llm.set_script(
        script(
            {
                "rules": [
                    {"role": "left", "replies": [{"text": "LEFT VIEW", "latency_s": 1.5}]},
                    {"role": "right", "replies": [{"text": "RIGHT VIEW", "latency_s": 1.5}]},
                    {"role": "joiner", "replies": [{"echo": "joined"}]},
                ]
            }
        )
    )
    stack.coordinator()
    for role in ("left", "right", "joiner"):
        stack.worker("fan", role)
    crew = await register(store, FANOUT)
    js = nc.jetstream()
    job = (await submit_job(js, store, crew, {})).id

    events = await job_events(js, job)

    assert (await store.get(job)).status == "completed"
    states = step_states(events, job)
    working = TaskState.TASK_STATE_WORKING
    first_done = next(i for i, (_, s) in enumerate(states) if s == TaskState.TASK_STATE_COMPLETED)
    started_before = {step for step, s in states[:first_done] if s == working}
    assert {"look_left", "look_right"} <= started_before  # both branches ran at the same time
    join_request = next(r for r in llm.requests() if r.step == "join")
    assert "LEFT VIEW" in str(join_request.body["messages"]) and "RIGHT VIEW" in str(
        join_request.body["messages"]
    )


async def test_two_workers_of_one_role_share_its_queue(
    stack: Stack, llm: ScriptedServer, nc: NATS, store: RedisJobStore
) -> None:
    llm.set_script(script({"default": [{"text": "done", "latency_s": 0.4}]}))
    single = """
name: solo
roles: {doer: {role: Doer, goal: Do it}}
tasks: {only: {description: Do it., expected_output: Done., agent: doer}}
"""
    stack.coordinator()
    stack.worker("solo", "doer")
    stack.worker("solo", "doer")
    crew = await register(store, single)
    js = nc.jetstream()
    jobs = [(await submit_job(js, store, crew, {})).id for _ in range(8)]
    for job in jobs:
        await job_events(js, job)
    workers = set()
    for job in jobs:
        assert (await store.get(job)).status == "completed"
        workers.add((await store.results(job))["only"].worker)
    assert len(workers) == 2


async def test_killed_worker_step_completes_and_is_recorded_once(
    stack: Stack, llm: ScriptedServer, nc: NATS, store: RedisJobStore, redis_client: aioredis.Redis
) -> None:
    llm.set_script(script({"default": [{"text": "slow first try", "latency_s": 60}, {"text": "second try"}]}))
    single = """
name: solo
roles: {doer: {role: Doer, goal: Do it}}
tasks: {only: {description: Do it., expected_output: Done., agent: doer}}
"""
    stack.coordinator()
    first = stack.worker("solo", "doer")
    crew = await register(store, single)
    js = nc.jetstream()
    job = (await submit_job(js, store, crew, {})).id
    await llm.wait_for_requests(1)  # the first worker is inside its LLM call
    first.kill()
    stack.worker("solo", "doer")

    await job_events(js, job)

    record = await store.get(job)
    assert (record.status, record.output) == ("completed", "second try")
    assert await redis_client.hlen(job_keys(job).results) == 1
    assert len(llm.requests()) == 2


async def test_second_coordinator_finishes_a_job_after_the_first_is_killed(
    stack: Stack, llm: ScriptedServer, nc: NATS, store: RedisJobStore
) -> None:
    llm.set_script(
        script(
            {
                "rules": [
                    {"role": "researcher", "replies": [{"text": "facts", "latency_s": 1.0}]},
                    {"role": "writer", "replies": ["text"]},
                    {"role": "reviewer", "replies": ["final"]},
                ]
            }
        )
    )
    first = stack.coordinator()
    for role in ("researcher", "writer", "reviewer"):
        stack.worker("pipeline", role)
    crew = await register(store, SEQUENTIAL)
    js = nc.jetstream()
    job = (await submit_job(js, store, crew, {"topic": "x"})).id
    await wait_for_step_state(js, job, "research", TaskState.TASK_STATE_WORKING)
    first.kill()
    stack.coordinator()

    await job_events(js, job)

    record = await store.get(job)
    assert (record.status, record.output) == ("completed", "final")
    assert [r.step for r in llm.requests()] == ["research", "write", "review"]


async def test_a_step_that_keeps_failing_fails_the_job_with_the_reason(
    stack: Stack, llm: ScriptedServer, nc: NATS, store: RedisJobStore
) -> None:
    stack.extra_env["CREWS_MAX_DELIVER"] = "2"
    llm.set_script(script({"default": [{"error": 500}]}))
    single = """
name: solo
roles: {doer: {role: Doer, goal: Do it}}
tasks: {only: {description: Do it., expected_output: Done., agent: doer}}
"""
    stack.coordinator()
    stack.worker("solo", "doer")
    crew = await register(store, single)
    js = nc.jetstream()
    job = (await submit_job(js, store, crew, {})).id

    await job_events(js, job)

    record = await store.get(job)
    assert record.status == "failed"
    assert record.reason.startswith("step 'only' failed: gave up after 2 deliveries")
    assert len(llm.requests()) == 2


async def test_cancel_stops_a_running_job_and_no_step_runs_after_it(
    stack: Stack, llm: ScriptedServer, nc: NATS, store: RedisJobStore
) -> None:
    llm.set_script(
        script({"rules": [{"role": "researcher", "replies": [{"text": "facts", "latency_s": 1.5}]}]})
    )
    stack.coordinator()
    for role in ("researcher", "writer", "reviewer"):
        stack.worker("pipeline", role)
    crew = await register(store, SEQUENTIAL)
    js = nc.jetstream()
    job = (await submit_job(js, store, crew, {"topic": "x"})).id
    await wait_for_step_state(js, job, "research", TaskState.TASK_STATE_WORKING)

    await cancel_job(js, store, job)
    await wait_for_step_state(js, job, "research", TaskState.TASK_STATE_CANCELED)

    record = await store.get(job)
    assert record.status == "canceled"
    assert {r.step for r in llm.requests()} <= {"research"}
    assert record.steps["write"] == "pending" and record.steps["review"] == "pending"
