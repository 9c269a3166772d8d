"""A role called directly as an A2A agent on NATS keeps the crew's gates: approvals and the token budget.

The coordinator and the role's agent build a step with the same function
(``crews.spec.step_work.build_step_work``), so a direct call carries the
role's approval rules and the crew's budget exactly as a planned step does.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator

import pytest
import redis.asyncio as aioredis
from a2a.client import ClientConfig
from a2a.types import (
    Message,
    Part,
    Role,
    SendMessageRequest,
    StreamResponse,
    TaskState,
    TaskStatusUpdateEvent,
)
from nats.aio.client import Client as NATS

from bus.a2a_nats.client import nats_client_factory
from bus.contracts.keys import StepKeys
from bus.jetstream.events import follow_events
from crews.jobs.store import RedisJobStore
from inference.testing.script import Script
from inference.testing.server import ScriptedServer
from roles.a2a.agent import job_of, role_card
from tests.e2e.stack import Stack, register
from tests.servers import ManagedServer

CREW = """
name: gated
budgets: {max_tokens: BUDGET}
roles:
  clerk:
    role: Clerk
    goal: Add up the bill
    tools: [{name: calculator, approval: APPROVAL}]
tasks:
  bill: {description: Add 2 and 3., expected_output: The sum., agent: clerk}
"""

TOOL_CALL = {"tool_calls": [{"id": "call-1", "name": "calculator", "arguments": {"expression": "2 + 3"}}]}


@pytest.fixture
def llm() -> Iterator[ScriptedServer]:
    with ScriptedServer(Script.model_validate({"default": [TOOL_CALL, {"echo": "done"}]})) as server:
        yield server


async def _call_clerk(
    nc: NATS,
    redis_client: aioredis.Redis,
    stack: Stack,
    nats_url: str,
    crew: str,
    first: asyncio.Queue[StreamResponse] | None = None,
) -> list[StreamResponse]:
    await register(RedisJobStore(redis_client), crew, "gated.yaml")
    stack.worker("gated", "clerk")
    client = nats_client_factory(nc, ClientConfig(streaming=True)).create(
        role_card("gated", "clerk", None, nats_url)
    )
    ask = Message(message_id=uuid.uuid4().hex, role=Role.ROLE_USER, parts=[Part(text="Add 2 and 3.")])
    events: list[StreamResponse] = []
    async for event in client.send_message(SendMessageRequest(message=ask)):
        if first is not None and not events:
            first.put_nowait(event)
        events.append(event)
    return events


async def _first_state(nc: NATS, job: str, state: TaskState) -> TaskStatusUpdateEvent:
    """The first status update of ``job``'s events (the step's, on JetStream) in ``state``."""
    async for item in follow_events(nc.jetstream(), job):
        if item.event.HasField("status_update") and item.event.status_update.status.state == state:
            return item.event.status_update
    raise AssertionError("the events ended")


async def test_a_direct_call_pauses_an_approval_required_tool(
    llm: ScriptedServer,
    stack: Stack,
    nats_server: ManagedServer,
    nc: NATS,
    redis_client: aioredis.Redis,
) -> None:
    crew = CREW.replace("BUDGET", "100000").replace("APPROVAL", "required")
    first: asyncio.Queue[StreamResponse] = asyncio.Queue()
    call = asyncio.create_task(_call_clerk(nc, redis_client, stack, nats_server.url, crew, first))
    try:
        task_id = (await first.get()).task.id
        paused = await _first_state(nc, job_of(task_id), TaskState.TASK_STATE_INPUT_REQUIRED)
        assert "calculator" in paused.status.message.parts[0].text
        assert not call.done()  # the call waits for a person, the tool has not run
    finally:
        call.cancel()
        stack.stop_all()

    waiting = await redis_client.hgetall(StepKeys.for_job(job_of(task_id)).approvals)
    [record] = [json.loads(value) for value in waiting.values()]
    assert (record["tool"], record["arguments"], record["status"]) == (
        "calculator",
        {"expression": "2 + 3"},
        "pending",
    )
    assert len(llm.requests()) == 1  # paused before the tool ran: no second turn with its result


async def test_a_direct_call_respects_the_crews_token_budget(
    llm: ScriptedServer,
    stack: Stack,
    nats_server: ManagedServer,
    nc: NATS,
    redis_client: aioredis.Redis,
) -> None:
    crew = CREW.replace("BUDGET", "1").replace("APPROVAL", "none")
    try:
        events = await _call_clerk(nc, redis_client, stack, nats_server.url, crew)
    finally:
        stack.stop_all()

    final = [e.status_update for e in events if e.HasField("status_update")][-1]
    assert final.status.state == TaskState.TASK_STATE_FAILED
    assert "tokens" in final.status.message.parts[0].text
    assert len(llm.requests()) == 1  # the first call spent the budget; the second was refused
