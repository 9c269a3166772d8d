"""CPU per step in each process, handler by handler: ``python -m bench.stepcost``.

The worker's ``RoleWorker.handle``, the coordinator's ``on_submission`` and
``on_event`` (one per kind of step status a job produces) and the bus's
``WorkLoop`` (fetch, span, ack around a no-op handler) each run here, in
this process, against a real NATS, Redis and benchmark LLM, and each call's
CPU time (``time.process_time``) is recorded. Unlike whole-system figures
this hardly moves with the machine's load, so it shows a fix's effect (run
it on the code before and after) where ``python -m bench`` only shows noise.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable
from typing import Any

from a2a.types import StreamResponse, TaskState

from bench.console import say
from bench.crew import CREW_YAML, INPUTS, STEPS_PER_JOB
from bench.stack import BenchStack, Clients
from bench.stats import median
from bus import subjects
from bus.contracts.codec import encode
from bus.contracts.events import EVENT_KIND_HEADER
from bus.contracts.step import request_json
from bus.jetstream.streams import ensure_role_consumer, ensure_streams
from bus.jetstream.work_loop import Delivery, WorkLoop
from bus.settings import BusSettings
from crews.coordinator.coordinator import Coordinator
from crews.coordinator.settings import CrewsSettings
from crews.jobs.control import JobSubmission
from crews.jobs.events import status_event
from crews.jobs.store import StepResult, job_keys, new_job_id
from crews.plan.planner import plan
from crews.plan.step_work import plan_step_work
from crews.spec.load import load_crew_text
from crews.spec.models import CrewSpec
from inference.client import LLMPool
from inference.settings import InferenceSettings
from roles.settings import RoleSettings
from roles.worker import RoleWorker

CREW = "stepcost"


def _delivery(subject: str, data: bytes, msg_id: str = "", kind: str = "") -> Delivery:
    headers = {"Nats-Msg-Id": msg_id} if msg_id else {}
    if kind:
        headers[EVENT_KIND_HEADER] = kind  # as bus.jetstream.events.publish_event sets it
    return Delivery(subject, data, headers, 1, 5, 1)


def _completed(job: str, step: str, role: str) -> Delivery:
    """The ``COMPLETED`` a worker of ``role`` publishes for ``step`` of ``job``."""
    task = f"{job}.{step}"
    body = StreamResponse(status_update=status_event(job, task, TaskState.TASK_STATE_COMPLETED))
    subject = subjects.role_events_subject(job, CREW, role)
    return _delivery(subject, encode(body), f"{task}:completed", "step.status")


async def _cpu(call: Awaitable[Any]) -> float:
    """CPU µs of awaiting ``call`` (a coroutine made before the clock starts)."""
    begin = time.process_time()
    await call
    return (time.process_time() - begin) * 1e6


async def worker_us(stack: BenchStack, c: Clients, spec: CrewSpec, n: int) -> list[float]:
    llm = LLMPool(InferenceSettings(llm_urls=[stack.llm_url], llm_max_retries=0))
    worker = RoleWorker(
        c.nc, c.store.redis, llm, RoleSettings(redis_url=stack.redis_url), crew=CREW, role="writer"
    )
    found = []
    for i in range(n + 10):
        job = new_job_id()
        job_plan = plan(spec, INPUTS)
        await c.store.create(job, CREW, INPUTS, 3600)
        await c.store.start(job, job_plan, spec, "")
        work = plan_step_work(
            job, spec, job_plan, job_plan.steps[1], {"research": StepResult(output="facts")}
        )
        delivery = _delivery(subjects.task_subject(CREW, "writer"), request_json(work))
        cpu = await _cpu(worker.handle(delivery))
        if i >= 10:
            found.append(cpu)
    await llm.aclose()
    return found


async def coordinator_us(stack: BenchStack, c: Clients, n: int) -> dict[str, list[float]]:
    bus = BusSettings(nats_url=stack.nats_url)
    coordinator = Coordinator(c.js, c.store, CrewsSettings(redis_url=stack.redis_url), bus)
    await coordinator.setup()
    found: dict[str, list[float]] = {}
    for i in range(n + 5):
        job = new_job_id()
        results = job_keys(job).results
        await c.store.create(job, CREW, INPUTS, 3600)
        payload = JobSubmission(job=job, crew=CREW, inputs=INPUTS).model_dump_json().encode()
        timings = {"submission": await _cpu(coordinator.on_submission(_delivery("s", payload)))}
        for step, role in (("research", "researcher"), ("write", "writer"), ("review", "reviewer")):
            completed = _completed(job, step, role)  # its WORKING never reaches the coordinator
            await c.store.redis.hsetnx(results, step, StepResult(output="text", role="r").model_dump_json())
            kind = "completed event (finish)" if step == "review" else "completed event (dispatch)"
            timings[kind] = await _cpu(coordinator.on_event(completed))
        if i >= 5:
            for name, value in timings.items():
                found.setdefault(name, []).append(value)
    return found


async def workloop_us(stack: BenchStack, c: Clients, n: int) -> float:
    """CPU per message of a ``WorkLoop`` (fetch, span, keep-alive, ack) around a handler that does nothing."""
    consumer = await ensure_role_consumer(c.js, CREW, "noop", BusSettings(nats_url=stack.nats_url))
    for _ in range(n):
        await c.js.publish(subjects.task_subject(CREW, "noop"), b"{}", stream=subjects.TASKS_STREAM)
    done = asyncio.Event()
    seen = 0

    async def handler(_: Delivery) -> None:
        nonlocal seen
        seen += 1
        if seen == n:
            done.set()

    loop = WorkLoop(c.js, subjects.TASKS_STREAM, consumer, handler, concurrency=4)
    begin = time.process_time()
    runner = asyncio.create_task(loop.run())
    await asyncio.wait_for(done.wait(), 60)
    used = time.process_time() - begin
    loop.stop()
    await runner
    return used / n * 1e6


async def run(n: int) -> dict[str, float]:
    stack = BenchStack().start()
    try:
        async with stack.clients() as c:
            spec = load_crew_text(CREW_YAML.format(name=CREW), f"{CREW}.yaml")
            await c.store.save_crew(spec)
            await ensure_streams(c.js, BusSettings(nats_url=stack.nats_url))
            found = {"worker: RoleWorker.handle": median(await worker_us(stack, c, spec, n))}
            for name, values in (await coordinator_us(stack, c, n)).items():
                found[f"coordinator: {name}"] = median(values)
            found["bus: WorkLoop per message (no-op handler)"] = await workloop_us(stack, c, n * 4)
    finally:
        stack.close()
    return found


def per_step(found: dict[str, float]) -> dict[str, float]:
    """CPU µs per step by process, for the 3-step crew: each job is 1 submission, 3 step ends, 3 steps.

    The coordinator consumes step statuses only (``bus.subjects.ROLE_STATUSES_ALL``), and of them
    only the ends: a step's ``WORKING`` goes on its own subject, as do its artifacts and the job's
    own events.
    """
    c = {k.removeprefix("coordinator: "): v for k, v in found.items() if k.startswith("coordinator: ")}
    loop = found["bus: WorkLoop per message (no-op handler)"]
    coordinator = (
        c["submission"]
        + 2 * c["completed event (dispatch)"] + c["completed event (finish)"] + (1 + 3) * loop
    ) / STEPS_PER_JOB  # fmt: skip
    return {"worker": found["worker: RoleWorker.handle"] + loop, "coordinator": coordinator}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stepcost", description=__doc__)
    parser.add_argument("-n", type=int, default=100, help="steps (and jobs) to time")
    args = parser.parse_args(argv)
    found = asyncio.run(run(args.n))
    for name, value in found.items():
        say(f"{name:<52} {value:>8.0f} µs CPU")
    for name, value in per_step(found).items():
        say(f"per step, {name:<42} {value:>8.0f} µs CPU")


if __name__ == "__main__":
    main()
