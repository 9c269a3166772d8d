"""The job store's step states: events handled out of order never move a step back."""

from __future__ import annotations

import time

import pytest
import redis.asyncio as aioredis

from crews.jobs.store import RedisJobStore, job_keys, running_key
from crews.plan.planner import plan
from crews.spec import rules
from crews.spec.load import load_crew_text

CREW = """
name: c
roles: {w: {role: W, goal: G}}
tasks: {a: {description: D, expected_output: E, agent: w}}
"""


async def test_a_later_event_wins_whatever_order_they_are_handled_in(redis_client: aioredis.Redis) -> None:
    store = RedisJobStore(redis_client)
    await store.create("j1", "crew", {}, deadline_s=60)
    spec = load_crew_text(CREW, "c.yaml")
    await store.start("j1", plan(spec, {}), spec, "")
    assert (await store.get("j1")).steps == {"a": "pending"}

    await store.set_step_state("j1", "a", "dispatched")
    await store.set_step_state("j1", "a", "input-required", seq=7)
    await store.set_step_state("j1", "a", "working", seq=5)  # older event, handled later
    assert (await store.get("j1")).steps["a"] == "input-required"

    await store.set_step_state("j1", "a", "dispatched")  # the coordinator's own mark: only over pending
    await store.set_step_state("j1", "a", "completed", seq=9)
    assert (await store.get("j1")).steps["a"] == "completed"


async def test_a_job_is_started_once_and_a_second_start_reads_the_first(redis_client: aioredis.Redis) -> None:
    store = RedisJobStore(redis_client)
    await store.create("j2", "c", {}, deadline_s=60)
    spec = load_crew_text(CREW, "c.yaml")
    first = plan(spec, {})

    record, started = await store.start("j2", first, spec, "tp-1")
    assert started and record.status == "running" and record.steps == {"a": "pending"}
    assert record.plan is not None and record.plan.version == first.version
    await store.set_step_state("j2", "a", "dispatched")

    again, started = await store.start("j2", plan(spec, {}), spec, "tp-2")  # a redelivered submission
    assert not started and again.steps == {"a": "dispatched"}
    assert (await redis_client.hget("crews:{job:j2}:state", "traceparent")) == "tp-1"
    await store.finish("j2", "canceled")
    _, started = await store.start("j2", first, spec, "")
    assert not started and (await store.get("j2")).status == "canceled"  # an ended job stays ended


async def test_reading_a_job_checks_its_stored_crew_once_per_process(
    redis_client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The crew was checked when registered; the coordinator reads the job on every event."""
    store = RedisJobStore(redis_client)
    await store.create("j3", "c", {}, deadline_s=60)
    spec = load_crew_text(CREW.replace("name: c", "name: c-checked-once"), "c.yaml")
    await store.start("j3", plan(spec, {}), spec, "")
    checks: list[str] = []
    real = rules.check
    monkeypatch.setattr(rules, "check", lambda crew: checks.append(crew.name) or real(crew))

    records = [await store.get("j3") for _ in range(5)]
    assert {r.crew_spec.name for r in records if r.crew_spec is not None} == {"c-checked-once"}
    assert checks == []  # parsed once (here, by start), never re-checked by a read


@pytest.mark.parametrize("owner_known", [False, True])
async def test_a_job_ends_once_and_leaves_its_owners_running_set_with_a_ttl_on_every_key(
    redis_client: aioredis.Redis, owner_known: bool
) -> None:
    """With the owner the caller read (one round trip) or without (the script tells it): the same end."""
    store = RedisJobStore(redis_client)
    job = f"end-{owner_known}"
    await store.create(job, "c", {}, deadline_s=60, owner="alice")
    spec = load_crew_text(CREW, "c.yaml")
    await store.start(job, plan(spec, {}), spec, "")
    await redis_client.hset(job_keys(job).results, "a", "{}")
    assert await store.running_jobs("alice") >= 1
    owner = (await store.get(job)).owner if owner_known else None

    assert await store.finish(job, "completed", output="done", owner=owner)
    assert not await store.finish(job, "failed", reason="late", owner=owner)  # ends once
    record = await store.get(job)
    assert (record.status, record.output, record.reason) == ("completed", "done", "")
    assert job not in await redis_client.smembers(running_key("alice"))
    for key in (job_keys(job).state, job_keys(job).results):
        assert 0 < await redis_client.ttl(key) <= store.job_ttl_s
    assert job in await store.overdue(time.time() + 1)  # due at once, until its end is announced
