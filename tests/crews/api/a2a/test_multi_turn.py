"""A job that waits on a tool approval is an input-required task; the caller's next message answers it.

The test plays the role worker with the real approval gate (``roles.step.approvals``):
it records the call, announces it and waits for the decision the A2A message gives.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from a2a.client import Client, ClientCallContext, ClientConfig
from a2a.types import (
    GetTaskRequest,
    ListTasksRequest,
    Message,
    Part,
    Role,
    SendMessageRequest,
    StreamResponse,
    TaskState,
)
from a2a.utils.errors import InvalidParamsError, UnsupportedOperationError
from google.protobuf import json_format
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from bus import subjects
from bus.a2a_nats.client import nats_client_factory
from bus.contracts.codec import decode
from bus.contracts.step import from_request
from bus.jetstream.streams import ensure_role_consumer, ensure_streams
from bus.settings import BusSettings
from crews.coordinator.coordinator import Coordinator
from crews.jobs.approvals import list_approvals
from crews.jobs.store import RedisJobStore
from crews.spec.load import load_crew_text
from roles.step.approvals import ApprovalGate, ApprovalRecord
from roles.step.events import StepEvents
from roles.step.results import ResultStore, StepResult
from tests.crews.api.a2a.conftest import AUTH, KEY, WAIT_S, MakeClient, collect

CAREFUL = """
name: careful
roles:
  clerk:
    role: Clerk
    goal: Add up the bill
    tools: [{name: calculator, approval: required}]
tasks:
  bill: {description: Add 2 and 3., expected_output: The sum., agent: clerk}
"""
BINDINGS = ["JSONRPC", "HTTP+JSON", "NATS"]


@pytest.fixture
async def careful(js: JetStreamContext, store: RedisJobStore) -> str:
    spec = load_crew_text(CAREFUL, "careful.yaml")
    await store.save_crew(spec)
    await ensure_streams(js, BusSettings())
    await ensure_role_consumer(js, spec.name, "clerk", BusSettings())
    return spec.name


@dataclass
class Caller:
    """One a2a-sdk client of the crew over one binding, with the key (a service parameter over NATS)."""

    client: Client
    context: ClientCallContext | None

    def send(self, request: SendMessageRequest) -> AsyncIterator[StreamResponse]:
        return self.client.send_message(request, context=self.context)


@pytest.fixture
def caller(make_client: MakeClient, api_url: str, nc: NATS, http: httpx.AsyncClient) -> object:
    async def make(binding: str, **config: object) -> Caller:
        if binding != "NATS":
            return Caller(await make_client("careful", binding, **config), None)
        card = (await http.get(f"{api_url}/a2a/careful/.well-known/agent-card.json")).json()
        client = await nats_client_factory(nc, ClientConfig(**config)).create_from_url(  # type: ignore[arg-type]
            f"{api_url}/a2a/careful"
        )
        assert card["supportedInterfaces"][2]["url"].endswith("crews.a2a.careful")
        return Caller(client, ClientCallContext(service_parameters={"Authorization": f"Bearer {KEY}"}))

    return make


def say(
    text: str = "", data: dict[str, object] | None = None, task_id: str = "", context_id: str = ""
) -> SendMessageRequest:
    message = Message(
        message_id=uuid.uuid4().hex, role=Role.ROLE_USER, task_id=task_id, context_id=context_id
    )
    if text:
        message.parts.append(Part(text=text))
    if data is not None:
        part = Part(media_type="application/json")
        json_format.ParseDict(data, part.data)
        message.parts.append(part)
    return SendMessageRequest(message=message)


class PausedWorker:
    """The clerk's worker: takes the step, asks to run ``calculator(2 + 3)``, and finishes once decided."""

    def __init__(self, nc: NATS, js: JetStreamContext, store: RedisJobStore) -> None:
        self.nc, self.js, self.store = nc, js, store
        self.decided: asyncio.Future[ApprovalRecord] = asyncio.get_running_loop().create_future()

    async def run(self) -> None:
        sub = await self.js.pull_subscribe_bind(
            durable=subjects.role_consumer("careful", "clerk"), stream=subjects.TASKS_STREAM
        )
        [msg] = await sub.fetch(1, timeout=WAIT_S)
        work = from_request(decode(msg.data, SendMessageRequest))
        events = StepEvents(self.js, work, "test-worker")
        await events.working(1)
        gate = ApprovalGate(self.nc, self.store.redis, work, events)
        decision = await gate.decide(
            "calculator", "call-1", {"expression": "2 + 3"}, f"{work.job}:{work.step}:1"
        )
        self.decided.set_result(decision)
        output = "5" if decision.status == "approved" else f"not run: {decision.comment}"
        result = StepResult(output=output, role="clerk", worker="test-worker")
        recorded, _ = await ResultStore(self.store.redis, work.keys.results).record(work.step, result)
        await events.result(recorded)
        await msg.ack()
        await sub.unsubscribe()


def asked(event: StreamResponse) -> dict[str, object]:
    """The data part of an input-required status (what the job asks)."""
    status = event.task.status if event.HasField("task") else event.status_update.status
    assert status.state == TaskState.TASK_STATE_INPUT_REQUIRED
    [data] = [p for p in status.message.parts if p.WhichOneof("content") == "data"]
    found: dict[str, object] = json_format.MessageToDict(data.data)
    return found


def states(events: list[StreamResponse]) -> list[str]:
    return [
        TaskState.Name(e.task.status.state if e.HasField("task") else e.status_update.status.state)
        for e in events
        if e.HasField("task") or e.HasField("status_update")
    ]


@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_yes_answers_the_waiting_tool_call_and_the_job_goes_on(
    caller: object,
    careful: str,
    nc: NATS,
    js: JetStreamContext,
    store: RedisJobStore,
    coordinator: Coordinator,
    binding: str,
) -> None:
    crew = await caller(binding)  # type: ignore[operator]
    worker = PausedWorker(nc, js, store)
    working = asyncio.create_task(worker.run())

    first = await collect(crew.send(say("add it up", context_id="bill-talk")))

    job = first[0].task.id
    assert states(first)[-1] == "TASK_STATE_INPUT_REQUIRED"  # the stream ends where the job asks
    question = asked(first[-1])
    assert question["approvals"] == [
        {
            "approval": "bill:call-1",
            "tool": "calculator",
            "arguments": {"expression": "2 + 3"},
            "step": "bill",
            "role": "clerk",
            "choices": ["approve", "deny"],
        }
    ]
    last = first[-1]  # an update, or the task itself when the question came before the stream began
    text = (last.task.status if last.HasField("task") else last.status_update.status).message.parts[0].text
    assert "calculator" in text and "yes" in text
    assert not worker.decided.done()
    got = await crew.client.get_task(GetTaskRequest(id=job), context=crew.context)
    assert got.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
    listed = await crew.client.list_tasks(
        ListTasksRequest(status=TaskState.TASK_STATE_INPUT_REQUIRED), context=crew.context
    )
    assert [t.id for t in listed.tasks] == [job]

    rest = await collect(crew.send(say("yes, go ahead", task_id=job, context_id="bill-talk")))
    await working

    assert (await worker.decided).status == "approved"
    assert (await worker.decided).comment == "go ahead"
    assert rest[0].task.id == job
    assert states(rest)[-1] == "TASK_STATE_COMPLETED"
    assert "TASK_STATE_SUBMITTED" not in states(rest)  # an answer's stream starts where the answer was given
    assert [a.status for a in await list_approvals(store, job)] == ["approved"]
    assert (await store.get(job)).output == "5"

    with pytest.raises(UnsupportedOperationError, match="ended"):
        await collect(crew.send(say("yes", task_id=job)))


@pytest.mark.parametrize("binding", ["JSONRPC", "HTTP+JSON"])
async def test_a_blocking_data_answer_denies_with_a_comment(
    make_client: MakeClient,
    careful: str,
    nc: NATS,
    js: JetStreamContext,
    store: RedisJobStore,
    coordinator: Coordinator,
    binding: str,
) -> None:
    client = await make_client("careful", binding, streaming=False)
    worker = PausedWorker(nc, js, store)
    working = asyncio.create_task(worker.run())

    [paused] = await collect(client.send_message(say("add it up")))  # blocking: answers at the question
    job = paused.task.id
    approval = asked(paused)["approvals"][0]["approval"]  # type: ignore[index]

    with pytest.raises(InvalidParamsError, match="yes"):
        await collect(client.send_message(say("perhaps", task_id=job)))
    with pytest.raises(InvalidParamsError, match="does not wait"):
        await collect(client.send_message(say(data={"approval": "bill:other", "approve": True}, task_id=job)))
    answer = say(data={"approval": approval, "approve": False, "comment": "too costly"}, task_id=job)
    [done] = await collect(client.send_message(answer))
    again = await collect(client.send_message(answer))  # the same message again decides nothing twice
    await working

    assert done.task.status.state == TaskState.TASK_STATE_COMPLETED
    assert again[0].task.status.state == TaskState.TASK_STATE_COMPLETED
    decided = await worker.decided
    assert (decided.status, decided.comment) == ("denied", "too costly")
    assert (await store.get(job)).output == "not run: too costly"


async def test_a_message_to_a_working_task_that_asks_nothing_is_refused(
    make_client: MakeClient, careful: str, store: RedisJobStore, coordinator: Coordinator
) -> None:
    client = await make_client("careful", "JSONRPC", streaming=False)
    request = say("add it up")
    request.configuration.return_immediately = True
    [started] = await collect(client.send_message(request))

    with pytest.raises(UnsupportedOperationError, match="asks nothing"):
        await collect(client.send_message(say("yes", task_id=started.task.id)))
    assert await list_approvals(store, started.task.id) == []


async def test_the_answer_is_the_same_over_raw_json_rpc(
    api_url: str, careful: str, nc: NATS, js: JetStreamContext, store: RedisJobStore, coordinator: Coordinator
) -> None:
    """What a client without an SDK sends: a text 'no' with the taskId, as JSON-RPC."""
    worker = PausedWorker(nc, js, store)
    working = asyncio.create_task(worker.run())
    async with httpx.AsyncClient(headers=AUTH, timeout=WAIT_S) as http:

        async def rpc(method: str, params: dict[str, object]) -> dict[str, object]:
            body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
            answer: dict[str, object] = (await http.post(f"{api_url}/a2a/careful", json=body)).json()
            return answer

        message = {"messageId": "m-1", "role": "ROLE_USER", "parts": [{"text": "add it up"}]}
        paused = await rpc("SendMessage", {"message": message})
        task = paused["result"]["task"]  # type: ignore[index]
        assert task["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
        no = {"messageId": "m-2", "role": "ROLE_USER", "taskId": task["id"], "parts": [{"text": "No."}]}
        done = await rpc("SendMessage", {"message": no})
    await working

    assert done["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"  # type: ignore[index]
    assert (await worker.decided).status == "denied"


@pytest.mark.adk
@pytest.mark.filterwarnings("ignore::UserWarning")  # ADK marks its A2A support experimental
async def test_google_adk_answers_the_question_in_its_next_turn(
    api_url: str, careful: str, nc: NATS, js: JetStreamContext, store: RedisJobStore, coordinator: Coordinator
) -> None:
    from a2a.client import ClientFactory
    from google.adk.agents.remote_a2a_agent import RemoteA2aAgent
    from google.adk.runners import Runner
    from google.adk.sessions import InMemorySessionService
    from google.genai import types

    worker = PausedWorker(nc, js, store)
    working = asyncio.create_task(worker.run())
    async with httpx.AsyncClient(headers=AUTH, timeout=WAIT_S) as http:
        agent = RemoteA2aAgent(
            name="careful",
            agent_card=f"{api_url}/a2a/careful/http/.well-known/agent-card.json",
            a2a_client_factory=ClientFactory(ClientConfig(httpx_client=http, streaming=True)),
        )
        runner = Runner(app_name="adk-test", agent=agent, session_service=InMemorySessionService())
        session = await runner.session_service.create_session(app_name="adk-test", user_id="someone")

        async def turn(text: str) -> list[object]:
            message = types.Content(role="user", parts=[types.Part(text=text)])
            run = runner.run_async(user_id="someone", session_id=session.id, new_message=message)
            return await asyncio.wait_for(_all(run), WAIT_S)

        first = await turn("add it up")
        second = await turn("yes")
    await working

    asks = [
        str(call.args.get("input_required", ""))
        for e in first
        for call in e.get_function_calls()  # type: ignore[attr-defined]
        if call.args
    ]
    # ADK turns the input-required status into its own "required user input" call, with our text
    assert len(asks) == 1 and "Approval needed" in asks[0] and "calculator" in asks[0], asks
    assert _texts(second)[-1] == "5"
    assert (await worker.decided).status == "approved"
    [job] = await store.list_jobs()
    assert job.status == "completed"  # one job: the answer continued it, it did not start another


async def _all(run: AsyncIterator[object]) -> list[object]:
    return [event async for event in run]


def _texts(events: list[object]) -> list[str]:
    errors = [e.error_message for e in events if e.error_message]  # type: ignore[attr-defined]
    assert errors == []
    return [
        p.text
        for e in events
        if e.content  # type: ignore[attr-defined]
        for p in e.content.parts or []  # type: ignore[attr-defined]
        if p.text and not p.thought
    ]
