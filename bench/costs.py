"""What each operation on a step's path costs, one at a time: ``python -m bench.costs``.

The end-to-end benchmarks say how much CPU a step takes in each process;
this says where it goes. Each operation runs ``n`` times in this process,
against a real NATS and Redis (``bench.stack``), and is reported as CPU
microseconds (``time.process_time``) and wall microseconds per call. Whole-
process profilers (py-spy, cProfile) skew on a loaded 2-core machine: py-spy
counts a runnable thread waiting for a core as busy, and cProfile's own cost
swamps asyncio's small calls; one operation at a time does not.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from a2a.types import SendMessageRequest, StreamResponse, TaskState
from opentelemetry.sdk.trace import TracerProvider

from bench.console import say
from bench.crew import CREW_YAML, INPUTS
from bench.stack import BenchStack
from bus import subjects
from bus.contracts.codec import decode, encode
from bus.contracts.step import from_request, request_json, to_request, work_from_json
from bus.jetstream.streams import ensure_role_consumer, ensure_streams
from bus.settings import BusSettings
from crews.jobs.events import status_event
from crews.jobs.store import StepResult, job_keys
from crews.plan.planner import plan
from crews.plan.step_work import plan_step_work
from crews.spec.load import load_crew_text
from crews.spec.models import CrewSpec
from inference.client import LLMPool
from inference.settings import InferenceSettings

Op = Callable[[], Awaitable[Any]]


async def measure(op: Op, n: int) -> tuple[float, float]:
    """(CPU µs, wall µs) per call of ``op``, after 20 warm-up calls."""
    for _ in range(20):
        await op()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(n):
        await op()
    return (time.process_time() - cpu) / n * 1e6, (time.perf_counter() - wall) / n * 1e6


def _sync(fn: Callable[[], Any]) -> Op:
    async def op() -> Any:
        return fn()

    return op


def _fixtures() -> dict[str, Any]:
    spec = load_crew_text(CREW_YAML.format(name="costs"), "costs.yaml")
    job_plan = plan(spec, INPUTS)
    results = {"research": StepResult(output="three facts " * 20, role="researcher")}
    work = plan_step_work("job1", spec, job_plan, job_plan.steps[1], results)
    event = status_event("job1", "job1.write", TaskState.TASK_STATE_COMPLETED)
    return {
        "spec": spec,
        "spec_json": spec.model_dump(mode="json"),
        "plan_json": job_plan.model_dump(mode="json"),
        "request": encode(to_request(work)),
        "work": work,
        "event": encode(StreamResponse(status_update=event)),
    }


def pure_ops(f: dict[str, Any]) -> dict[str, Op]:
    tracer = TracerProvider().get_tracer("costs")

    def span() -> None:
        with tracer.start_as_current_span("x") as s:
            s.set_attribute("a", 1)

    return {
        "CrewSpec.model_validate (the crew, from JSON)": _sync(
            lambda: CrewSpec.model_validate(f["spec_json"])
        ),
        "plan() of a job": _sync(lambda: plan(f["spec"], INPUTS)),
        "step request: request_json (the coordinator's)": _sync(lambda: request_json(f["work"])),
        "step request: work_from_json (the worker's)": _sync(lambda: work_from_json(f["request"])),
        "step request through the A2A type (to_request + encode)": _sync(
            lambda: encode(to_request(f["work"]))
        ),
        "step request through the A2A type (decode + from_request)": _sync(
            lambda: from_request(decode(f["request"], SendMessageRequest))
        ),
        "event: decode (protobuf JSON)": _sync(lambda: decode(f["event"], StreamResponse)),
        "OpenTelemetry span (SDK, no exporter)": _sync(span),
    }


async def io_ops(stack: BenchStack, f: dict[str, Any], nc: Any, js: Any, redis: Any) -> dict[str, Op]:
    keys = job_keys("job1")
    await redis.hset(keys.state, mapping={"status": "running", "plan": "x" * 2000})
    settings = BusSettings(nats_url=stack.nats_url)
    await ensure_streams(js, settings)
    pool = LLMPool(InferenceSettings(llm_urls=[stack.llm_url], llm_max_retries=0))
    messages = [
        {"role": "system", "content": "You are Writer."},
        {"role": "user", "content": "Write. " * 100},
    ]

    async def pipelined() -> Any:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.hget(keys.results, "write").hget(keys.state, "status").hgetall(keys.memory)
            return await pipe.execute()

    http = httpx.AsyncClient(base_url=stack.llm_url)

    async def httpx_post() -> Any:
        body = {"model": "crews-local", "messages": messages}
        return (await http.post("/chat/completions", json=body)).json()

    return {
        "Redis HGET round trip (redis-py asyncio)": lambda: redis.hget(keys.state, "status"),
        "Redis HGETALL of a job state (2 kB plan)": lambda: redis.hgetall(keys.state),
        "Redis pipeline of 3 reads": pipelined,
        "JetStream publish + ack (an event)": lambda: js.publish(
            subjects.role_events_subject("job1", "costs", "writer"), f["event"], stream=subjects.EVENTS_STREAM
        ),
        "JetStream add_consumer (ensure_role_consumer)": lambda: ensure_role_consumer(js, "c", "r", settings),
        "core NATS subscribe + unsubscribe": lambda: _sub_unsub(nc),
        "LLMPool.chat (httpx, own response model)": lambda: pool.chat(
            messages, job_id="j", role="writer", step="w"
        ),
        "bare httpx post + json": httpx_post,
    }


async def _sub_unsub(nc: Any) -> None:
    sub = await nc.subscribe("crews.events.costs")
    await sub.unsubscribe()


async def run(n: int) -> dict[str, tuple[float, float]]:
    f = _fixtures()
    found = {name: await measure(op, n) for name, op in pure_ops(f).items()}
    stack = BenchStack().start()
    try:
        async with stack.clients() as c:
            ops = await io_ops(stack, f, c.nc, c.js, c.store.redis)
            for name, op in ops.items():
                found[name] = await measure(op, n)
    finally:
        stack.close()
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.costs", description=__doc__)
    parser.add_argument("-n", type=int, default=300, help="calls of each operation")
    args = parser.parse_args(argv)
    found = asyncio.run(run(args.n))
    say(f"{'operation':<52} {'CPU µs':>9} {'wall µs':>9}")
    for name, (cpu, wall) in found.items():
        say(f"{name:<52} {cpu:>9.0f} {wall:>9.0f}")


if __name__ == "__main__":
    main()
