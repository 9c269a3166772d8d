"""One contract for every engine: each test body runs against native, adk and crewai role workers.

Real processes (a coordinator and ``crews role`` workers; the crewai worker runs
from the CrewAI venv), real NATS and Redis, the scripted LLM over HTTP. What
every engine must do the same: the step's events, a result written once, usage
per role, tools through the allow-list and the approval gate, JSON output,
cancel, the token budget, and recovery after a worker is SIGKILLed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from a2a.types import TaskState
from nats.aio.client import Client as NATS

from crews.jobs.approvals import decide, list_approvals
from crews.jobs.control import cancel_job, submit_job
from crews.jobs.store import RedisJobStore, job_keys
from crews.local.servers import ServerProcess
from inference.testing.script import Script
from inference.testing.server import ScriptedServer
from roles.tools.toolset import unframe
from tests.e2e.engines import ENGINES, crews_executable
from tests.e2e.stack import Stack, job_events, register, step_states, wait_for_step_state

pytestmark = pytest.mark.slow

CREW = """
name: contract
roles:
  clerk:
    role: Clerk
    goal: Work out sums
    engine: {engine}
    tools: [{tools}]
tasks:
  bill:
    description: Add 2 and 3.
    expected_output: The sum.
    agent: clerk
{task_extra}
budgets: {budgets}
"""
SUM_CALL = {"tool_calls": [{"id": "call-1", "name": "calculator", "arguments": {"expression": "2 + 3"}}]}


@pytest.fixture
def llm() -> Iterator[ScriptedServer]:
    with ScriptedServer(Script()) as server:
        yield server


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def stack_env() -> dict[str, str]:
    return {"CREWS_ACK_WAIT_S": "3", "CREWS_LLM_BACKOFF_MAX_S": "0.2"}


def crew(engine: str, *, tools: str = "calculator", task_extra: str = "", budgets: str = "{}") -> str:
    return CREW.format(engine=engine, tools=tools, task_extra=task_extra, budgets=budgets)


async def start(stack: Stack, store: RedisJobStore, engine: str, text: str) -> str:
    name = await register(store, text, "contract.yaml")
    stack.coordinator()
    start_worker(stack, engine)
    return name


def start_worker(stack: Stack, engine: str) -> ServerProcess:
    return stack.worker("contract", "clerk", executable=crews_executable(engine))


def tool_outputs(llm: ScriptedServer) -> list[str]:
    """The content of every ``tool`` message the model was sent, in order (inside its data frame)."""
    return [
        unframe(str(message.get("content")))
        if "<tool_output" in str(message.get("content"))
        else str(message.get("content"))
        for request in llm.requests()
        for message in request.body["messages"]
        if message.get("role") == "tool"
    ]


async def test_a_step_calls_its_tool_answers_once_and_counts_usage(
    engine: str,
    llm: ScriptedServer,
    stack: Stack,
    nc: NATS,
    store: RedisJobStore,
    redis_client: aioredis.Redis,
) -> None:
    llm.set_script(Script.model_validate({"default": [SUM_CALL, {"text": "The sum is 5."}]}))
    js = nc.jetstream()
    name = await start(stack, store, engine, crew(engine))
    job = (await submit_job(js, store, name, {})).id
    events = await job_events(js, job)

    record = await store.get(job)
    assert (record.status, record.output) == ("completed", "The sum is 5.")
    assert "5" in tool_outputs(llm)  # the calculator ran, and its output went back to the model
    states = [s for step, s in step_states(events, job) if step == "bill"]
    assert states[0] == TaskState.TASK_STATE_WORKING and states[-1] == TaskState.TASK_STATE_COMPLETED
    assert any(e.HasField("artifact_update") and e.artifact_update.task_id == f"{job}.bill" for e in events)
    assert await redis_client.hlen(job_keys(job).results) == 1
    usage = (await store.usage(job))["clerk"]
    assert usage.calls == len(llm.requests()) >= 2
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert (await store.results(job))["bill"].usage.output_tokens == usage.output_tokens


async def test_json_output_matches_the_output_schema(
    engine: str, llm: ScriptedServer, stack: Stack, nc: NATS, store: RedisJobStore
) -> None:
    schema = {"type": "object", "properties": {"total": {"type": "integer"}}, "required": ["total"]}
    llm.set_script(Script.model_validate({"default": [{"json": {"total": 5}}]}))
    js = nc.jetstream()
    extra = f"    output_schema: {json.dumps(schema)}"
    name = await start(stack, store, engine, crew(engine, task_extra=extra))
    job = (await submit_job(js, store, name, {})).id
    await job_events(js, job)

    assert (await store.get(job)).status == "completed"
    assert (await store.results(job))["bill"].data == {"total": 5}


async def test_a_tool_outside_the_allow_list_never_runs_and_the_model_is_told(
    engine: str, llm: ScriptedServer, stack: Stack, nc: NATS, store: RedisJobStore
) -> None:
    call = {"tool_calls": [{"id": "call-1", "name": "shell", "arguments": {"cmd": "rm -rf /"}}]}
    llm.set_script(Script.model_validate({"default": [call, "never"]}))
    js = nc.jetstream()
    name = await start(stack, store, engine, crew(engine))
    job = (await submit_job(js, store, name, {})).id
    await job_events(js, job)

    record = await store.get(job)
    assert record.status == "completed"  # the model was told no, and answered without it
    assert len(llm.requests()) == 2
    if engine == "native":  # ADK's and CrewAI's own loops handle a tool they were not given before ours
        [told] = tool_outputs(llm)
        assert "no tool 'shell'" in told and "nothing ran" in told
    assert "rm -rf" not in str((await store.results(job))["bill"].output)


@pytest.mark.parametrize("approve", [True, False], ids=["approved", "denied"])
async def test_an_approval_required_tool_waits_for_a_person(
    engine: str, approve: bool, llm: ScriptedServer, stack: Stack, nc: NATS, store: RedisJobStore
) -> None:
    llm.set_script(Script.model_validate({"default": [SUM_CALL, "done"]}))
    js = nc.jetstream()
    tools = "{name: calculator, approval: required}"
    name = await start(stack, store, engine, crew(engine, tools=tools))
    job = (await submit_job(js, store, name, {})).id
    await wait_for_step_state(js, job, "bill", TaskState.TASK_STATE_INPUT_REQUIRED)

    [waiting] = await list_approvals(store, job)
    assert (waiting.tool, waiting.arguments, waiting.status) == (
        "calculator",
        {"expression": "2 + 3"},
        "pending",
    )
    assert len(llm.requests()) == 1  # paused before the tool ran
    await decide(js, store, job, waiting.id, approve, comment="" if approve else "not today")
    await job_events(js, job)

    assert (await store.get(job)).status == "completed"
    [output] = tool_outputs(llm)
    if approve:
        assert output == "5"
    else:
        assert "denied" in output and "not today" in output


async def test_cancel_interrupts_a_running_step(
    engine: str, llm: ScriptedServer, stack: Stack, nc: NATS, store: RedisJobStore
) -> None:
    llm.set_script(Script.model_validate({"default": [{"text": "too late", "latency_s": 30}]}))
    js = nc.jetstream()
    name = await start(stack, store, engine, crew(engine))
    job = (await submit_job(js, store, name, {})).id
    await llm.wait_for_requests(1)
    await cancel_job(js, store, job)
    await wait_for_step_state(js, job, "bill", TaskState.TASK_STATE_CANCELED, timeout=20)

    record = await store.get(job)
    assert record.status == "canceled" and record.output == ""
    assert await store.results(job) == {}


async def test_the_token_budget_stops_the_next_llm_call(
    engine: str, llm: ScriptedServer, stack: Stack, nc: NATS, store: RedisJobStore
) -> None:
    llm.set_script(Script.model_validate({"default": [SUM_CALL, "done"]}))
    js = nc.jetstream()
    name = await start(stack, store, engine, crew(engine, budgets="{max_tokens: 20}"))
    job = (await submit_job(js, store, name, {})).id
    await job_events(js, job)

    record = await store.get(job)
    assert record.status == "failed"
    assert "budgets.max_tokens" in record.reason
    assert len(llm.requests()) == 1  # the first call spent the budget; the second was never sent
    assert (await store.usage(job))["clerk"].calls == 1


async def test_a_sigkilled_workers_step_is_redone_and_recorded_once(
    engine: str,
    llm: ScriptedServer,
    stack: Stack,
    nc: NATS,
    store: RedisJobStore,
    redis_client: aioredis.Redis,
) -> None:
    replies: list[Any] = [{"text": "first try", "latency_s": 60}, {"text": "second try"}]
    llm.set_script(Script.model_validate({"default": replies}))
    js = nc.jetstream()
    name = await register(store, crew(engine), "contract.yaml")
    stack.coordinator()
    first = start_worker(stack, engine)
    job = (await submit_job(js, store, name, {})).id
    await llm.wait_for_requests(1)  # the first worker is inside its LLM call
    first.kill()
    start_worker(stack, engine)
    await job_events(js, job)

    record = await store.get(job)
    assert (record.status, record.output) == ("completed", "second try")
    assert await redis_client.hlen(job_keys(job).results) == 1
    assert len(llm.requests()) == 2


async def test_an_unavailable_llm_pool_gives_the_step_back_and_it_is_redone(
    engine: str, llm: ScriptedServer, stack: Stack, nc: NATS, store: RedisJobStore
) -> None:
    llm.set_script(Script.model_validate({"default": [{"error": 503}, "after the outage"]}))
    js = nc.jetstream()
    name = await start(stack, store, engine, crew(engine))
    job = (await submit_job(js, store, name, {})).id
    events = await job_events(js, job)

    record = await store.get(job)
    assert (record.status, record.output) == ("completed", "after the outage")
    attempts = [
        e.status_update.metadata["attempt"]
        for e in events
        if e.HasField("status_update")
        and e.status_update.task_id == f"{job}.bill"
        and e.status_update.status.state == TaskState.TASK_STATE_WORKING
    ]
    assert attempts == [1, 2]


async def test_crewai_applies_the_tasks_guardrail_and_retries_with_its_feedback(
    llm: ScriptedServer, stack: Stack, nc: NATS, store: RedisJobStore
) -> None:
    replies: list[Any] = [
        "The sum is 5.",
        {"json": {"valid": False, "feedback": "Say where the number comes from."}},
        "The sum is 5, by the calculator.",
        {"json": {"valid": True, "feedback": None}},
    ]
    llm.set_script(Script.model_validate({"default": replies}))
    js = nc.jetstream()
    extra = "    guardrail: The answer says where its number comes from."
    name = await start(stack, store, "crewai", crew("crewai", tools="", task_extra=extra))
    job = (await submit_job(js, store, name, {})).id
    await job_events(js, job)

    record = await store.get(job)
    assert (record.status, record.output) == ("completed", "The sum is 5, by the calculator.")
    sent = [str(r.body["messages"]) for r in llm.requests()]
    assert len(sent) == 4 and "where its number comes from" in sent[1]  # the rule went to the checking call
    assert "Say where the number comes from." in sent[2]  # CrewAI retried with the guardrail's feedback
