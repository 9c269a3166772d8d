"""The local autoscaler: a flooded role scales out to its max, then back to its min; others stay put."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import nats
import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS

from crews.jobs.control import submit_job
from crews.jobs.store import RedisJobStore
from crews.local.autoscaler import Autoscaler, desired_workers
from crews.local.stack import LocalStack
from crews.spec.load import load_crew_text
from crews.spec.models import ScalingSpec
from inference.testing.script import Script
from inference.testing.server import ScriptedServer
from tests.e2e.stack import Stack, job_events
from tests.servers import ManagedServer

CREW = """
name: scale
process: parallel
roles:
  busy: {role: Busy, goal: Work, scaling: {min: 1, max: 3, target_queue_depth: 2}}
  idle: {role: Idle, goal: Wait, scaling: {min: 1, max: 2, target_queue_depth: 2}}
tasks:
  work: {description: Work., expected_output: Done., agent: busy}
"""


def test_desired_workers_follows_lag_within_min_and_max() -> None:
    scaling = ScalingSpec(min=0, max=4, target_queue_depth=5)
    assert [desired_workers(lag, scaling) for lag in (0, 1, 5, 6, 19, 100)] == [0, 1, 1, 2, 4, 4]
    assert desired_workers(0, ScalingSpec(min=2, max=4, target_queue_depth=5)) == 2


async def test_flooded_role_scales_to_max_then_back_to_min_while_others_stay(
    tmp_path: Path,
    nats_server: ManagedServer,
    redis_server: ManagedServer,
    nc: NATS,
    redis_client: aioredis.Redis,
) -> None:
    store = RedisJobStore(redis_client)
    spec = load_crew_text(CREW, "scale.yaml")
    await store.save_crew(spec)
    history: list[dict[str, int]] = []
    reached_max, back_to_min, stop = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def after(counts: dict[str, int]) -> None:
        history.append(counts)
        if counts["scale/busy"] == 3:
            reached_max.set()
        if reached_max.is_set() and counts["scale/busy"] == 1:
            back_to_min.set()

    with ScriptedServer(Script.model_validate({"default": [{"text": "ok", "latency_s": 0.5}]})) as llm:
        services = Stack(nats_server.url, redis_server.url, llm.url)
        workers = LocalStack(tmp_path, api_host="127.0.0.1", api_port=0, progress=print)
        workers.env.update(services.env(), CREWS_WORKER_CONCURRENCY="1")
        try:
            services.coordinator()
            scaler = Autoscaler(nc.jetstream(), workers.start_worker, workers.stop_worker, cooldown_s=1.0)
            scaler.track(spec)
            runner = asyncio.create_task(scaler.run(0.2, stop, None, after))
            js = nc.jetstream()
            jobs = [(await submit_job(js, store, "scale", {})).id for _ in range(12)]
            await asyncio.wait_for(reached_max.wait(), 60)
            for job in jobs:
                await job_events(js, job)
            await asyncio.wait_for(back_to_min.wait(), 60)
            stop.set()
            await runner
        finally:
            stop.set()
            workers.stop()
            services.stop_all()

    assert [(await store.get(job)).status for job in jobs] == ["completed"] * len(jobs)
    assert history[0] == {"scale/busy": 1, "scale/idle": 1}
    assert max(c["scale/busy"] for c in history) == 3
    assert {c["scale/idle"] for c in history} == {1}
    assert len(workers.workers["scale/busy"]) == 1


async def test_a_round_that_meets_a_nats_outage_is_tried_again_and_scaling_goes_on(
    own_nats_server: ManagedServer, caplog: pytest.LogCaptureFixture
) -> None:
    """``crews up`` ran the stack only as long as its autoscaler: a NATS restart stopped every process."""
    nc = await nats.connect(own_nats_server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.1)
    started: list[str] = []

    async def start(crew: str, role: str) -> None:
        started.append(f"{crew}/{role}")

    async def stop_worker(crew: str, role: str) -> None:
        raise AssertionError(f"nothing to scale in: {crew}/{role}")

    rounds: list[dict[str, int]] = []
    restarts: list[str] = []
    back, stop = asyncio.Event(), asyncio.Event()

    async def after(counts: dict[str, int]) -> None:
        rounds.append(counts)
        if len(rounds) == 1:
            own_nats_server.kill()  # the next round's lag reads meet no server
        else:
            back.set()

    async def before() -> None:
        failed = any("scaling round failed" in r.message for r in caplog.records)
        if failed and not restarts:
            restarts.append(own_nats_server.url)
            await asyncio.to_thread(own_nats_server.restart)

    scaler = Autoscaler(nc.jetstream(timeout=1.0), start, stop_worker, cooldown_s=60.0)
    scaler.track(load_crew_text(CREW, "scale.yaml"))
    try:
        with caplog.at_level(logging.WARNING, logger="crews.local.autoscaler"):
            runner = asyncio.create_task(scaler.run(0.1, stop, before, after))
            await asyncio.wait_for(back.wait(), 60)
            stop.set()
            await asyncio.wait_for(runner, 30)
    finally:
        stop.set()
        await nc.close()

    assert rounds[0] == rounds[-1] == {"scale/busy": 1, "scale/idle": 1}
    assert sorted(started) == ["scale/busy", "scale/idle"]  # the outage started or stopped nothing
    assert restarts  # a round failed, was logged, and the loop went on to the next
