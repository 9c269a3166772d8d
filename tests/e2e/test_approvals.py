"""A tool marked `approval: required` pauses its step (A2A input-required) until a person decides."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from a2a.types import TaskState
from nats.aio.client import Client as NATS

from bus.contracts.approvals import arguments_digest
from crews.errors import JobError
from crews.jobs.approvals import decide, list_approvals
from crews.jobs.control import submit_job
from crews.jobs.store import RedisJobStore
from inference.testing.script import Script
from inference.testing.server import ScriptedServer
from roles.tools.toolset import unframe
from tests.e2e.stack import Stack, job_events, register, step_states, wait_for_step_state
from tests.servers import ManagedServer

CREW = """
name: careful
roles:
  clerk:
    role: Clerk
    goal: Add up the bill
    tools: [{name: calculator, approval: required}]
tasks:
  bill: {description: Add 2 and 3., expected_output: The sum., agent: clerk}
"""


@pytest.fixture
def llm() -> Iterator[ScriptedServer]:
    replies = [
        {"tool_calls": [{"id": "call-1", "name": "calculator", "arguments": {"expression": "2 + 3"}}]},
        {"echo": "done"},
    ]
    with ScriptedServer(Script.model_validate({"default": replies})) as server:
        yield server


@pytest.mark.parametrize("approve", [True, False], ids=["approved", "denied"])
async def test_tool_waits_for_a_person_then_runs_or_is_refused(
    approve: bool,
    llm: ScriptedServer,
    stack: Stack,
    nats_server: ManagedServer,
    nc: NATS,
    store: RedisJobStore,
) -> None:
    await register(store, CREW, "careful.yaml")
    try:
        stack.coordinator()
        stack.worker("careful", "clerk")
        js = nc.jetstream()
        job = (await submit_job(js, store, "careful", {})).id
        await wait_for_step_state(js, job, "bill", TaskState.TASK_STATE_INPUT_REQUIRED)

        [waiting] = await list_approvals(store, job)
        assert (waiting.id, waiting.tool, waiting.arguments) == (
            "bill:call-1",
            "calculator",
            {"expression": "2 + 3"},
        )
        assert waiting.status == "pending" and len(llm.requests()) == 1  # paused before the tool ran
        await decide(js, store, job, waiting.id, approve, comment="" if approve else "not today")
        with pytest.raises(JobError, match="already"):
            await decide(js, store, job, waiting.id, approve)
        events = await job_events(js, job)
    finally:
        stack.stop_all()

    record = await store.get(job)
    assert (record.status, record.steps["bill"]) == ("completed", "completed")
    tool_turn = llm.requests()[1].body["messages"][-1]["content"]
    if approve:
        assert unframe(tool_turn) == "5"
    else:
        assert "denied" in tool_turn and "not today" in tool_turn and unframe(tool_turn) != "5"
    [record] = await list_approvals(store, job)
    assert (record.decided_by, record.comment) == ("api-key", "" if approve else "not today")
    assert record.arguments_sha256 == arguments_digest("calculator", {"expression": "2 + 3"})
    states = [s for step, s in step_states(events, job) if step == "bill"]
    assert TaskState.TASK_STATE_INPUT_REQUIRED in states and states[-1] == TaskState.TASK_STATE_COMPLETED
