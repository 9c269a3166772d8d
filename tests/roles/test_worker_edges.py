"""The worker's other paths: cancel mid-step, time limit, unknown engine, a message that is not a step, spans."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import redis.asyncio as aioredis
from a2a.types import TaskState, TaskStatus, TaskStatusUpdateEvent
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bus import subjects
from bus.contracts.keys import StepKeys
from bus.jetstream.dead_letters import DeadLetter
from bus.jetstream.dispatch import publish_durable
from bus.jetstream.events import publish_event
from crews.jobs.store import RedisJobStore
from inference.testing.script import Script
from inference.testing.server import ScriptedServer
from roles.tools.registry import CALCULATOR, MEMORY_READ, MEMORY_WRITE, Tool, ToolContext, ToolRegistry
from tests.roles.helpers import CREW, Workers, make_work, new_job, reason, states, step_events
from tests.waits import all_acked

WORKING, COMPLETED = TaskState.TASK_STATE_WORKING, TaskState.TASK_STATE_COMPLETED
FAILED, CANCELED = TaskState.TASK_STATE_FAILED, TaskState.TASK_STATE_CANCELED


def script(*rules: dict[str, object]) -> Script:
    return Script.model_validate({"rules": list(rules)})


def cancelling_registry(redis_client: aioredis.Redis) -> ToolRegistry:
    """The built-ins plus a tool that cancels the job, as the coordinator would while the step runs."""

    async def cancel(context: ToolContext, arguments: dict[str, Any]) -> str:
        await redis_client.hset(f"crews:{{job:{context.job}}}:state", "status", "canceled")
        return "canceled"

    tool = Tool(
        name="cancel_job",
        description="Cancel the job.",
        parameters={"type": "object"},
        function=cancel,
        read_only=True,
    )
    return ToolRegistry([MEMORY_READ, MEMORY_WRITE, CALCULATOR, tool])


def holding_tool(name: str, started: asyncio.Event, release: asyncio.Event) -> Tool:
    """A read-only tool that sets ``started`` and returns only once ``release`` is set."""

    async def hold(context: ToolContext, arguments: dict[str, Any]) -> str:
        started.set()
        await release.wait()
        return "held"

    return Tool(name=name, description="Hold.", parameters={"type": "object"}, function=hold, read_only=True)


async def test_cancel_while_running_stops_before_the_next_llm_call(
    workers: Workers, llm: ScriptedServer, redis_client: aioredis.Redis
) -> None:
    llm.set_script(script({"role": "writer", "replies": [{"tool_calls": [{"name": "cancel_job"}]}, "never"]}))
    await workers.start("writer", tools=cancelling_registry(redis_client))
    work = make_work(new_job(), "long", tools=["cancel_job"])
    await redis_client.hset(work.keys.state, "status", "running")

    events = await workers.run_step(work)

    assert states(events) == [WORKING, CANCELED]
    assert "stopped" in reason(events[-1])
    assert len(llm.requests()) == 1
    assert await redis_client.hlen(work.keys.results) == 0


async def test_a_job_stopped_while_the_answer_came_gets_no_result(
    workers: Workers, llm: ScriptedServer, redis_client: aioredis.Redis
) -> None:
    """No signal on the bus (as after a lost one): the result's write itself reads the job's status."""
    llm.set_script(script({"role": "writer", "replies": [{"text": "too late", "latency_s": 0.5}]}))
    await workers.start("writer")
    work = make_work(new_job(), "late")
    await redis_client.hset(work.keys.state, "status", "running")
    await workers.dispatch(work)
    await llm.wait_for_requests(1, 10)

    await redis_client.hset(work.keys.state, "status", "canceled")
    events = await step_events(workers.js, work)

    assert states(events) == [WORKING, CANCELED]
    assert f"job {work.job} is canceled" in reason(events[-1])
    assert await redis_client.hlen(work.keys.results) == 0


async def test_a_job_stop_announced_on_the_bus_interrupts_the_tool_in_flight(
    workers: Workers, llm: ScriptedServer, redis_client: aioredis.Redis
) -> None:
    started, never = asyncio.Event(), asyncio.Event()
    tool = holding_tool("wait", started, never)  # only an interruption ends this step
    llm.set_script(script({"role": "writer", "replies": [{"tool_calls": [{"name": "wait"}]}, "never"]}))
    await workers.start("writer", tools=ToolRegistry([MEMORY_READ, MEMORY_WRITE, tool]))
    work = make_work(new_job(), "stuck", tools=["wait"])
    await workers.dispatch(work)
    await started.wait()

    await redis_client.hset(work.keys.state, "status", "canceled")
    job_status = TaskStatusUpdateEvent(
        task_id=work.job, context_id=work.job, status=TaskStatus(state=TaskState.TASK_STATE_CANCELED)
    )
    await publish_event(workers.js, work.job, job_status, f"{work.job}:job:cancelled")
    events = await step_events(workers.js, work)

    assert states(events) == [WORKING, CANCELED]
    assert f"job {work.job} is canceled" in reason(events[-1])
    assert len(llm.requests()) == 1 and not never.is_set()


async def test_a_step_past_its_time_limit_fails(workers: Workers, llm: ScriptedServer) -> None:
    llm.set_script(script({"role": "writer", "replies": [{"text": "too late", "latency_s": 5}]}))
    await workers.start("writer")

    events = await workers.run_step(make_work(new_job(), "slow", max_execution_time_s=0.3))

    assert states(events) == [WORKING, FAILED]
    assert "ran longer than its max_execution_time of 0.3 s" in reason(events[-1])


async def test_an_engine_this_worker_lacks_fails_with_the_reason(
    workers: Workers, llm: ScriptedServer
) -> None:
    await workers.start("writer")

    events = await workers.run_step(make_work(new_job(), "framework", engine="crewai"))

    assert states(events) == [WORKING, FAILED]
    assert "engine 'crewai' needs crewai, which this worker's environment does not have" in reason(events[-1])
    assert llm.requests() == []


async def test_a_tool_the_worker_does_not_have_fails_with_the_reason(
    workers: Workers, llm: ScriptedServer
) -> None:
    await workers.start("writer")

    events = await workers.run_step(make_work(new_job(), "search", tools=["web_search"]))

    assert states(events) == [WORKING, FAILED]
    assert "tool 'web_search', which this worker does not have" in reason(events[-1])


async def test_a_message_that_is_not_a_step_is_dead_lettered_at_once(workers: Workers) -> None:
    await workers.start("writer")
    js = workers.js
    dead_sub = await js.pull_subscribe("crews.dead.>", stream=subjects.DEAD_LETTER_STREAM)

    await publish_durable(
        js, subjects.task_subject(CREW, "writer"), b'{"not": "a step"}', "junk", "CREWS_TASKS"
    )

    [msg] = await dead_sub.fetch(1, timeout=10)
    dead = DeadLetter.model_validate_json(msg.data)
    assert (dead.consumer, dead.deliveries, dead.payload) == (f"{CREW}__writer", 1, b'{"not": "a step"}')
    assert dead.reason.startswith(f"not a step request for {CREW}/writer")
    await workers.stop()
    info = await all_acked(js, subjects.TASKS_STREAM, f"{CREW}__writer")
    assert info.num_redelivered == 0
    await dead_sub.unsubscribe()


async def test_step_and_tool_spans_join_the_dispatchers_trace(
    workers: Workers, llm: ScriptedServer, spans: InMemorySpanExporter
) -> None:
    calc = {"tool_calls": [{"name": "calculator", "arguments": {"expression": "3 * 3"}}]}
    llm.set_script(script({"role": "writer", "replies": [calc, "Nine."]}))
    await workers.start("writer")
    work = make_work(new_job(), "traced", tools=["calculator"])

    with trace.get_tracer("test").start_as_current_span("submit") as root:
        await workers.dispatch(work)
    trace_id = root.get_span_context().trace_id
    await step_events(workers.js, work)
    await workers.stop()

    by_name = {span.name: span for span in spans.get_finished_spans() if span.context.trace_id == trace_id}
    step, tool = by_name["invoke_agent writer"], by_name["execute_tool calculator"]
    consumer = by_name[f"process {subjects.task_subject(CREW, 'writer')}"]
    chats = [span for name, span in by_name.items() if name.startswith("chat ")]
    assert step.parent is not None and step.parent.span_id == consumer.context.span_id
    assert tool.parent is not None and tool.parent.span_id == step.context.span_id
    assert chats and all(c.parent is not None and c.parent.span_id == step.context.span_id for c in chats)
    attributes = dict(step.attributes or {})
    assert (attributes["gen_ai.operation.name"], attributes["gen_ai.agent.name"]) == (
        "invoke_agent",
        "writer",
    )
    assert attributes["crews.attempt"] == 1
    assert (attributes["crews.job.id"], attributes["crews.step"], attributes["crews.step.outcome"]) == (
        work.job,
        "traced",
        "completed",
    )
    assert (
        isinstance(attributes["gen_ai.usage.output_tokens"], int)
        and attributes["gen_ai.usage.output_tokens"] > 0
    )
    tool_attributes = dict(tool.attributes or {})
    assert tool_attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool_attributes["gen_ai.tool.name"] == "calculator"
    assert "3 * 3" not in json.dumps(tool_attributes)  # arguments are not recorded


async def test_a_started_step_reads_as_working_from_redis_and_its_working_skips_the_coordinator(
    workers: Workers, llm: ScriptedServer, redis_client: aioredis.Redis
) -> None:
    """The step's start is written with its first read; its WORKING goes on the ``working`` subject."""
    started, release = asyncio.Event(), asyncio.Event()
    tool = holding_tool("hold", started, release)
    llm.set_script(script({"role": "writer", "replies": [{"tool_calls": [{"name": "hold"}]}, "done"]}))
    await workers.start("writer", tools=ToolRegistry([MEMORY_READ, MEMORY_WRITE, tool]))
    job = new_job()
    work = make_work(job, "held", tools=["hold"], keys=StepKeys.for_job(job))  # as the coordinator sends
    await redis_client.hset(work.keys.state, mapping={"id": job, "crew": CREW, "status": "running"})
    await redis_client.hset(work.keys.state, "step:held", "dispatched")
    working = await workers.js.subscribe(subjects.role_events_subject(job, CREW, "writer", "working"))
    await workers.dispatch(work)
    await started.wait()

    record = await RedisJobStore(redis_client).get(job)
    assert (record.steps["held"], record.attempts["held"]) == ("working", 1)
    release.set()
    events = await step_events(workers.js, work)
    assert states(events) == [WORKING, COMPLETED]
    assert (await working.next_msg(timeout=5)).subject.endswith(".writer.working")
    await redis_client.hset(
        work.keys.state, "status", "completed"
    )  # an ended job shows the coordinator's states
    assert (await RedisJobStore(redis_client).get(job)).steps["held"] == "dispatched"
