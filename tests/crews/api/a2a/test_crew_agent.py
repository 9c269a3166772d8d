"""a2a-sdk's client calls a crew over HTTP (JSON-RPC and REST): every method, streaming order, cancel, errors."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from a2a.types import (
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    Message,
    Part,
    Role,
    SendMessageRequest,
    StreamResponse,
    SubscribeToTaskRequest,
    TaskState,
)
from a2a.utils.errors import (
    InvalidParamsError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
)
from google.protobuf import json_format
from nats.js import JetStreamContext

from crews.coordinator.coordinator import Coordinator
from crews.jobs.store import RedisJobStore
from tests.crews.api.a2a.conftest import WAIT_S, MakeClient, collect, take_step

BINDINGS = ["JSONRPC", "HTTP+JSON"]


def ask(text: str = "", data: dict[str, object] | None = None, context_id: str = "") -> SendMessageRequest:
    message = Message(message_id=uuid.uuid4().hex, role=Role.ROLE_USER, context_id=context_id)
    if text:
        message.parts.append(Part(text=text))
    if data is not None:
        part = Part(media_type="application/json")
        json_format.ParseDict(data, part.data)
        message.parts.append(part)
    return SendMessageRequest(message=message)


def shape(event: StreamResponse) -> str:
    """The event as ``kind:state-or-artifact[:text]``, for comparing streams."""
    if event.HasField("task"):
        return f"task:{TaskState.Name(event.task.status.state)}"
    if event.HasField("artifact_update"):
        return f"artifact:{event.artifact_update.artifact.name}"
    update = event.status_update
    said = " ".join(p.text for p in update.status.message.parts)
    return f"status:{TaskState.Name(update.status.state)}" + (f":{said}" if said else "")


async def run_digest(js: JetStreamContext, store: RedisJobStore) -> None:
    assert await take_step(js, store, "digest", "researcher", "- bees dance") == "research"
    assert await take_step(js, store, "digest", "writer", "Bees dance to talk.") == "write"


@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_streamed_message_runs_the_crew_and_streams_its_steps_in_order(
    make_client: MakeClient,
    digest: str,
    js: JetStreamContext,
    store: RedisJobStore,
    coordinator: Coordinator,
    binding: str,
) -> None:
    client = await make_client(binding=binding)
    streaming = asyncio.create_task(collect(client.send_message(ask("bees", context_id="conversation-1"))))
    await run_digest(js, store)
    events = await streaming

    first = shape(events[0])
    submitted = ["status:TASK_STATE_SUBMITTED"] if first == "task:TASK_STATE_SUBMITTED" else []
    assert [shape(e) for e in events] == [
        first,
        *submitted,  # never after a WORKING snapshot: states do not go back
        "status:TASK_STATE_WORKING",
        "status:TASK_STATE_WORKING:step research (researcher) started",
        "artifact:research",
        "status:TASK_STATE_WORKING:step research (researcher) completed",
        "status:TASK_STATE_WORKING:step write (writer) started",
        "artifact:write",
        "status:TASK_STATE_WORKING:step write (writer) completed",
        "artifact:output",
        "status:TASK_STATE_COMPLETED",
    ]
    job = events[0].task.id
    assert {e.status_update.task_id or e.artifact_update.task_id or e.task.id for e in events} == {job}
    assert {
        e.status_update.context_id or e.artifact_update.context_id or e.task.context_id for e in events
    } == {"conversation-1"}
    assert events[-2].artifact_update.artifact.parts[0].text == "Bees dance to talk."
    assert (await store.get(job)).inputs == {"topic": "bees"}  # the text filled the one required input


@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_blocking_message_answers_the_finished_task(
    make_client: MakeClient,
    digest: str,
    js: JetStreamContext,
    store: RedisJobStore,
    coordinator: Coordinator,
    binding: str,
) -> None:
    client = await make_client(binding=binding, streaming=False)
    sent = asyncio.create_task(collect(client.send_message(ask(data={"topic": "bees", "words": 20}))))
    await run_digest(js, store)
    [event] = await sent

    task = event.task
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    assert [(a.name, a.parts[0].text) for a in task.artifacts] == [
        ("research", "- bees dance"),
        ("write", "Bees dance to talk."),
        ("output", "Bees dance to talk."),
    ]
    assert task.history[0].parts[0].data.struct_value["topic"] == "bees"
    assert (await store.get(task.id)).inputs == {"topic": "bees", "words": 20}


@pytest.mark.parametrize("binding", BINDINGS)
async def test_get_list_subscribe_and_cancel_a_running_task(
    make_client: MakeClient,
    digest: str,
    js: JetStreamContext,
    store: RedisJobStore,
    coordinator: Coordinator,
    binding: str,
) -> None:
    client = await make_client(binding=binding, streaming=False, polling=True)
    [event] = await collect(client.send_message(ask("wasps", context_id="ctx-cancel")))
    job = event.task.id
    assert event.task.status.state in (TaskState.TASK_STATE_SUBMITTED, TaskState.TASK_STATE_WORKING)

    streaming = await make_client(binding=binding)
    followed = streaming.subscribe(SubscribeToTaskRequest(id=job))
    first = await asyncio.wait_for(anext(followed), WAIT_S)
    assert (first.task.id, first.task.context_id) == (job, "ctx-cancel")
    got = await client.get_task(GetTaskRequest(id=job))
    assert (got.id, got.context_id, got.history[0].parts[0].text) == (job, "ctx-cancel", "wasps")
    listed = await client.list_tasks(ListTasksRequest(context_id="ctx-cancel"))
    assert [t.id for t in listed.tasks] == [job]
    assert (await client.list_tasks(ListTasksRequest(context_id="elsewhere"))).tasks == []

    cancelled = await client.cancel_task(CancelTaskRequest(id=job))

    assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
    rest = await collect(followed)
    assert shape(rest[-1]).startswith("status:TASK_STATE_CANCELED")
    assert (await store.get(job)).status == "canceled"
    with pytest.raises(TaskNotCancelableError):
        await client.cancel_task(CancelTaskRequest(id=job))
    with pytest.raises(UnsupportedOperationError):
        await collect(streaming.subscribe(SubscribeToTaskRequest(id=job)))


@pytest.mark.parametrize("binding", BINDINGS)
async def test_a_missing_input_is_an_error_that_names_it(
    make_client: MakeClient, digest: str, store: RedisJobStore, binding: str
) -> None:
    client = await make_client(binding=binding, streaming=False)

    with pytest.raises(InvalidParamsError, match="topic"):
        await collect(client.send_message(ask(data={"words": 3})))
    with pytest.raises(TaskNotFoundError):
        await client.get_task(GetTaskRequest(id="no-such-job"))
    assert await store.list_jobs() == []


async def test_unauthenticated_calls_get_401_and_the_card_names_the_scheme(api_url: str, digest: str) -> None:
    async with httpx.AsyncClient(base_url=api_url, timeout=WAIT_S) as anonymous:
        card = (await anonymous.get("/a2a/digest/.well-known/agent-card.json")).json()
        rpc = await anonymous.post(
            "/a2a/digest", json={"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "x"}}
        )
        rest = await anonymous.get("/a2a/digest/tasks")
        wrong = await anonymous.get("/a2a/digest/tasks", headers={"Authorization": "Bearer nope"})

    assert card["securitySchemes"]["api-key"]["httpAuthSecurityScheme"]["scheme"] == "bearer"
    assert card["securityRequirements"] == [{"schemes": {"api-key": {}}}]
    for response in (rpc, rest, wrong):
        assert response.status_code == 401, response.text
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "Authorization: Bearer" in rpc.json()["message"]


async def test_the_card_describes_the_crew_and_its_interfaces(api_url: str, digest: str) -> None:
    async with httpx.AsyncClient(base_url=api_url, timeout=WAIT_S) as anonymous:
        card = (await anonymous.get("/a2a/digest/.well-known/agent-card.json")).json()

    assert (card["name"], card["description"]) == ("digest", "Research a topic and write about it.")
    assert card["capabilities"]["streaming"] is True
    [skill] = card["skills"]
    assert "- topic: string, required: What to write about" in skill["description"]
    assert "- words: integer, default 80" in skill["description"]
    assert "A text part alone fills 'topic'." in skill["description"]
    bindings = [(i["protocolBinding"], i["url"]) for i in card["supportedInterfaces"]]
    assert bindings[:2] == [("JSONRPC", f"{api_url}/a2a/digest"), ("HTTP+JSON", f"{api_url}/a2a/digest")]
    assert bindings[2][0] == "https://crews.dev/a2a/bindings/nats/v1"
    assert bindings[2][1].endswith("/crews.a2a.digest")


async def test_a_call_without_a_version_header_is_taken_as_1_0(
    api_url: str, digest: str, http: httpx.AsyncClient
) -> None:
    body = {"jsonrpc": "2.0", "id": 7, "method": "GetTask", "params": {"id": "missing"}}
    answer = (await http.post(f"{api_url}/a2a/digest", json=body)).json()

    assert answer["error"]["code"] == -32001  # task not found: the 1.0 method was served


async def test_an_unknown_crew_has_no_card(api_url: str, http: httpx.AsyncClient) -> None:
    response = await http.get(f"{api_url}/a2a/nobody/.well-known/agent-card.json")

    assert response.status_code == 404
    assert response.json()["error"] == "crew_not_found"
