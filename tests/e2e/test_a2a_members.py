"""A crew uses an outside A2A agent (a small a2a-sdk agent this test serves) as one of its roles.

The coordinator and both role workers are real ``crews`` processes; the agent
is reached over HTTP (its agent card, JSON-RPC) or over NATS (the binding). The
crew file only names it (``agent: shouter``); the operator declares where it is
and which variable holds its key (``CREWS_A2A_AGENTS`` on the role workers).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from a2a.client import ClientConfig
from a2a.types import GetTaskRequest, ListTasksRequest, Message, Part, Role, SendMessageRequest, TaskState
from nats.aio.client import Client as NATS

from bus.a2a_nats.client import nats_client_factory
from crews.jobs.control import submit_job
from crews.jobs.store import RedisJobStore
from crews.spec.load import load_crew_text
from inference.testing.script import Script
from inference.testing.server import ScriptedServer
from roles.a2a.agent import role_card
from tests.e2e.outside_agent import OUTSIDE_KEY, Shouter, serve_over_http, serve_over_nats
from tests.e2e.stack import Stack, job_events, step_states
from tests.servers import ManagedServer

CREW = """
name: outsourced
inputs:
  topic: {description: What to write about}
roles:
  researcher: {role: Researcher, goal: "Find facts about {topic}"}
  shouter:
    role: Outside writer
    goal: Write about {topic}
    engine: a2a
    agent: shouter
tasks:
  research: {description: "Research {topic}.", expected_output: Three facts., agent: researcher}
  write: {description: "Write about {topic}.", expected_output: One loud line., agent: shouter}
"""


@pytest.fixture
def llm() -> Iterator[ScriptedServer]:
    script = Script.model_validate({"rules": [{"role": "researcher", "replies": ["FACT-1 FACT-2"]}]})
    with ScriptedServer(script) as server:
        yield server


@pytest.fixture
def stack_env() -> dict[str, str]:
    return {"SHOUTER_KEY": OUTSIDE_KEY}


def declare(stack: Stack, **where: object) -> None:
    """The operator's declaration of the shouter on the role workers: where it is, which variable holds its key."""
    agent = {"name": "shouter", "authorization_env": "SHOUTER_KEY", **where}
    stack.extra_env["CREWS_A2A_AGENTS"] = json.dumps([agent])


async def run_crew(stack: Stack, nc: NATS, store: RedisJobStore, **where: object) -> str:
    declare(stack, **where)
    spec = load_crew_text(CREW, "outsourced.yaml")
    await store.save_crew(spec)
    stack.coordinator()
    stack.worker("outsourced", "researcher")
    stack.worker("outsourced", "shouter")
    return (await submit_job(nc.jetstream(), store, "outsourced", {"topic": "bees"})).id


async def check_job(nc: NATS, store: RedisJobStore, job: str, shouter: Shouter) -> None:
    events = await job_events(nc.jetstream(), job)

    record = await store.get(job)
    assert (record.status, record.output) == ("completed", "WRITE ABOUT BEES."), record.reason
    [sent] = shouter.received
    assert "Write about bees." in sent and "Expected output: One loud line." in sent
    assert "FACT-1 FACT-2" in sent  # the researcher's output went along as context
    write = [e for e in events if (e.status_update.task_id or e.artifact_update.task_id) == f"{job}.write"]
    said = [
        " ".join(p.text for p in e.status_update.status.message.parts)
        for e in write
        if e.HasField("status_update")
    ]
    assert "reading the task" in said  # the agent's progress, streamed into the job's events
    artifacts = [e.artifact_update.artifact.artifact_id for e in write if e.HasField("artifact_update")]
    assert artifacts == [f"{job}.write.remote.draft", f"{job}.write.remote.answer", f"{job}.write.output"]
    assert ("write", TaskState.TASK_STATE_COMPLETED) in step_states(events, job)
    results = await store.results(job)
    assert (results["write"].output, results["write"].role) == ("WRITE ABOUT BEES.", "shouter")
    assert (await store.usage(job))["shouter"].calls == 1


async def test_a_crew_uses_an_outside_agent_over_http(stack: Stack, nc: NATS, store: RedisJobStore) -> None:
    shouter = Shouter()
    async with serve_over_http(shouter) as url:
        job = await run_crew(stack, nc, store, url=url, allow_private=True)  # the test serves on loopback
        await check_job(nc, store, job, shouter)


async def test_a_crew_uses_an_outside_agent_over_nats(
    stack: Stack, nc: NATS, store: RedisJobStore, nats_server: ManagedServer
) -> None:
    shouter = Shouter()
    async with serve_over_nats(nc, "outside.shouter", nats_server.url, shouter):
        job = await run_crew(stack, nc, store, nats="outside.shouter")
        await check_job(nc, store, job, shouter)


async def test_a_role_is_an_a2a_agent_on_nats(
    stack: Stack, nc: NATS, store: RedisJobStore, nats_server: ManagedServer, llm: ScriptedServer
) -> None:
    spec = load_crew_text(CREW, "outsourced.yaml")
    await store.save_crew(spec)
    stack.worker("outsourced", "researcher")  # from its ready line; the agent loads on the first call
    card = role_card("outsourced", "researcher", None, nats_server.url)
    client = nats_client_factory(nc, ClientConfig(streaming=True)).create(card)
    ask = Message(message_id=uuid.uuid4().hex, role=Role.ROLE_USER, parts=[Part(text="Tell me about wasps.")])

    events = [e async for e in client.send_message(SendMessageRequest(message=ask))]

    kinds = [e.WhichOneof("payload") for e in events]
    assert kinds == ["task", "status_update", "artifact_update", "status_update"]
    assert events[2].artifact_update.artifact.parts[0].text == "FACT-1 FACT-2"
    assert events[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
    [request] = llm.requests()
    assert (request.role, request.step) == ("researcher", "a2a")
    assert "Tell me about wasps." in str(request.body["messages"])
    assert "Find facts about {topic}" in str(request.body["messages"])  # no data part: the placeholder stays
    task_id = events[0].task.id
    stored = await client.get_task(GetTaskRequest(id=task_id))  # from Redis: any replica answers
    assert stored.status.state == TaskState.TASK_STATE_COMPLETED
    assert stored.artifacts[0].parts[0].text == "FACT-1 FACT-2"
    assert [t.id for t in (await client.list_tasks(ListTasksRequest())).tasks] == [task_id]
