"""An a2a-sdk client drives an AgentExecutor over NATS: send, get task, cancel, streamed events in order."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import nats
import pytest
from a2a.client import Client, ClientCallContext, ClientConfig
from a2a.client.auth import AuthInterceptor, CredentialService
from a2a.client.errors import A2AClientError
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentSkill,
    CancelTaskRequest,
    GetTaskRequest,
    HTTPAuthSecurityScheme,
    ListTasksRequest,
    Message,
    Part,
    Role,
    SecurityRequirement,
    SecurityScheme,
    SendMessageRequest,
    StreamResponse,
    StringList,
    SubscribeToTaskRequest,
    Task,
    TaskPushNotificationConfig,
    TaskState,
    TaskStatus,
)
from a2a.utils.errors import (
    PushNotificationNotSupportedError,
    TaskNotCancelableError,
    TaskNotFoundError,
)
from google.protobuf.json_format import MessageToDict
from google.protobuf.timestamp_pb2 import Timestamp
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bus.a2a_nats.client import (
    NATS_PROTOCOL_BINDING,
    SEQ_HEADER,
    STREAM_HEADER,
    NatsTransport,
    nats_agent_interface,
    nats_client_factory,
    subject_from_url,
)
from bus.a2a_nats.server import NatsA2AServer, api_key_authenticator
from bus.errors import A2ANatsError
from bus.subjects import a2a_subject
from tests.servers import ManagedServer

WAIT_S = 10.0
DONE = (TaskState.TASK_STATE_COMPLETED, TaskState.TASK_STATE_CANCELED)


def working(context: RequestContext) -> Task:
    stamp = Timestamp()
    stamp.GetCurrentTime()
    status = TaskStatus(state=TaskState.TASK_STATE_WORKING, timestamp=stamp)
    return Task(id=context.task_id, context_id=context.context_id, status=status)


@dataclass
class EchoExecutor(AgentExecutor):
    """Works, answers with one artifact, completes; optionally holds until released."""

    hold: bool = False
    release: asyncio.Event = field(default_factory=asyncio.Event)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    trace_ids: list[int] = field(default_factory=list)
    handled: int = 0

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        self.handled += 1
        self.trace_ids.append(trace.get_current_span().get_span_context().trace_id)
        assert context.task_id and context.context_id
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        await event_queue.enqueue_event(working(context))
        self.started.set()
        if self.hold:
            await self.release.wait()
        await updater.add_artifact([Part(text=f"echo: {context.get_user_input()}")], name="answer")
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        self.cancelled.set()
        assert context.task_id and context.context_id
        await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()


def agent_card(agent: str, url: str, *, bearer: bool = False) -> AgentCard:
    card = AgentCard(
        name=agent,
        description="echoes its input",
        version="1.0.0",
        supported_interfaces=[nats_agent_interface(agent, url)],
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[AgentSkill(id="echo", name="echo", description="echoes", tags=["test"])],
    )
    if bearer:
        scheme = SecurityScheme(http_auth_security_scheme=HTTPAuthSecurityScheme(scheme="bearer"))
        card.security_schemes["api-key"].CopyFrom(scheme)
        card.security_requirements.append(SecurityRequirement(schemes={"api-key": StringList()}))
    return card


def ask(text: str, *, task_id: str = "") -> SendMessageRequest:
    message = Message(
        message_id=str(uuid.uuid4()), role=Role.ROLE_USER, parts=[Part(text=text)], task_id=task_id
    )
    return SendMessageRequest(message=message)


def kind(event: StreamResponse) -> str:
    return str(event.WhichOneof("payload"))


async def collect(events: AsyncIterator[StreamResponse]) -> list[StreamResponse]:
    async def drain() -> list[StreamResponse]:
        return [event async for event in events]

    return await asyncio.wait_for(drain(), WAIT_S)


@pytest.fixture
def agent() -> str:
    return f"echo-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def executor() -> EchoExecutor:
    return EchoExecutor()


@pytest.fixture
def card(agent: str, nats_server: ManagedServer) -> AgentCard:
    return agent_card(agent, nats_server.url)


@pytest.fixture
async def server(
    nc: NATS, agent: str, executor: EchoExecutor, card: AgentCard
) -> AsyncIterator[NatsA2AServer]:
    async with NatsA2AServer.for_executor(nc, agent, executor, card, heartbeat_interval=0.2) as served:
        yield served


def client(nc: NATS, card: AgentCard, **config: Any) -> Client:
    return nats_client_factory(nc, ClientConfig(**config), timeout=WAIT_S).create(card)


@pytest.fixture
def holding(executor: EchoExecutor) -> Iterator[EchoExecutor]:
    executor.hold = True
    yield executor
    executor.release.set()


async def test_streamed_events_arrive_in_order(nc: NATS, server: NatsA2AServer, card: AgentCard) -> None:
    events = await collect(client(nc, card).send_message(ask("hi")))

    assert [kind(e) for e in events] == ["task", "artifact_update", "status_update"]
    assert events[0].task.status.state == TaskState.TASK_STATE_WORKING
    assert events[1].artifact_update.artifact.parts[0].text == "echo: hi"
    assert events[2].status_update.status.state == TaskState.TASK_STATE_COMPLETED
    task = await client(nc, card).get_task(GetTaskRequest(id=events[0].task.id))
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    assert [a.parts[0].text for a in task.artifacts] == ["echo: hi"]


async def test_blocking_send_returns_the_finished_task(
    nc: NATS, server: NatsA2AServer, card: AgentCard
) -> None:
    [event] = await collect(client(nc, card, streaming=False).send_message(ask("once")))

    assert event.task.status.state == TaskState.TASK_STATE_COMPLETED
    assert event.task.artifacts[0].parts[0].text == "echo: once"


async def test_non_blocking_send_then_get_and_cancel(
    nc: NATS, server: NatsA2AServer, card: AgentCard, holding: EchoExecutor
) -> None:
    a2a = client(nc, card, streaming=False, polling=True)
    [event] = await collect(a2a.send_message(ask("slow")))
    assert event.task.status.state == TaskState.TASK_STATE_WORKING
    task_id = event.task.id

    assert (await a2a.get_task(GetTaskRequest(id=task_id))).status.state == TaskState.TASK_STATE_WORKING
    cancelled = await a2a.cancel_task(CancelTaskRequest(id=task_id))

    assert cancelled.status.state == TaskState.TASK_STATE_CANCELED
    assert holding.cancelled.is_set()
    assert (await a2a.get_task(GetTaskRequest(id=task_id))).status.state == TaskState.TASK_STATE_CANCELED
    with pytest.raises(TaskNotCancelableError):
        await a2a.cancel_task(CancelTaskRequest(id=task_id))


async def test_subscribe_follows_a_running_task_to_its_end(
    nc: NATS, server: NatsA2AServer, card: AgentCard, holding: EchoExecutor
) -> None:
    [event] = await collect(client(nc, card, streaming=False, polling=True).send_message(ask("later")))
    followed = client(nc, card).subscribe(SubscribeToTaskRequest(id=event.task.id))

    first = await asyncio.wait_for(anext(followed), WAIT_S)
    assert first.task.status.state == TaskState.TASK_STATE_WORKING
    holding.release.set()
    rest = await collect(followed)

    assert [kind(e) for e in rest] == ["artifact_update", "status_update"]
    assert rest[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED


async def test_list_tasks(nc: NATS, server: NatsA2AServer, card: AgentCard) -> None:
    a2a = client(nc, card, streaming=False)
    ids = {(await collect(a2a.send_message(ask(text))))[0].task.id for text in ("one", "two")}

    listed = await a2a.list_tasks(ListTasksRequest())

    assert {task.id for task in listed.tasks} == ids
    assert all(task.status.state == TaskState.TASK_STATE_COMPLETED for task in listed.tasks)


async def test_errors_map_to_a2a_errors(nc: NATS, server: NatsA2AServer, card: AgentCard) -> None:
    a2a = client(nc, card)
    with pytest.raises(TaskNotFoundError):
        await a2a.get_task(GetTaskRequest(id="no-such-task"))
    with pytest.raises(TaskNotFoundError):
        await collect(a2a.subscribe(SubscribeToTaskRequest(id="no-such-task")))
    with pytest.raises(PushNotificationNotSupportedError):
        await a2a.create_task_push_notification_config(
            TaskPushNotificationConfig(task_id="t", url="http://x")
        )


async def raw_request(nc: NATS, subject: str, body: bytes, headers: dict[str, str] | None = None) -> Any:
    reply = await nc.request(subject, body, timeout=WAIT_S, headers=headers)
    return json.loads(reply.data)


async def test_wire_errors_carry_json_rpc_codes(nc: NATS, server: NatsA2AServer) -> None:
    envelope = {"jsonrpc": "2.0", "id": 7, "method": "tasks/frobnicate", "params": {}}
    unknown = await raw_request(nc, server.subject, json.dumps(envelope).encode())
    assert (unknown["id"], unknown["error"]["code"]) == (7, -32601)
    garbage = await raw_request(nc, server.subject, b"{not json")
    assert (garbage["id"], garbage["error"]["code"]) == (None, -32700)
    envelope = {"jsonrpc": "2.0", "id": "v", "method": "GetTask", "params": {"id": "x"}}
    old = await raw_request(nc, server.subject, json.dumps(envelope).encode(), {"A2A-Version": "0.3"})
    assert old["error"]["code"] == -32009
    envelope = {"jsonrpc": "2.0", "id": "p", "method": "GetTask", "params": {"id": 3, "historyLength": "x"}}
    bad = await raw_request(nc, server.subject, json.dumps(envelope).encode())
    assert bad["error"]["code"] == -32602


async def next_frame(frames: Any) -> tuple[str, int, bytes]:
    msg: Msg = await frames.next_msg(timeout=WAIT_S)
    headers = msg.headers or {}
    return headers[STREAM_HEADER], int(headers[SEQ_HEADER]), msg.data


async def test_stream_frames_are_numbered_with_heartbeats_and_an_end_marker(
    nc: NATS, server: NatsA2AServer, holding: EchoExecutor
) -> None:
    inbox = nc.new_inbox()
    frames = await nc.subscribe(inbox)
    envelope = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "SendStreamingMessage",
        "params": MessageToDict(ask("x")),
    }
    await nc.publish(
        server.subject, json.dumps(envelope).encode(), reply=inbox, headers={"A2A-Version": "1.0"}
    )

    assert (await next_frame(frames))[:2] == ("data", 1)
    assert (await next_frame(frames))[:2] == ("heartbeat", 1)  # the agent is quiet: the stream is alive
    holding.release.set()
    seen = [await next_frame(frames)]
    while seen[-1][0] != "end":
        seen.append(await next_frame(frames))
    data = [(k, s) for k, s, _ in seen if k != "heartbeat"]

    assert data == [("data", 2), ("data", 3), ("end", 4)]
    assert seen[-1][2] == b""
    await frames.unsubscribe()


async def test_two_replicas_in_a_queue_group_share_the_agent(nats_server: ManagedServer, agent: str) -> None:
    card = agent_card(agent, nats_server.url)
    store = InMemoryTaskStore()
    replicas = [EchoExecutor(), EchoExecutor()]
    connections = [await nats.connect(nats_server.url) for _ in range(3)]
    servers = [
        NatsA2AServer(
            conn, agent, DefaultRequestHandler(agent_executor=ex, task_store=store, agent_card=card)
        )
        for conn, ex in zip(connections, replicas, strict=False)
    ]
    try:
        for server in servers:
            await server.start()
        a2a = client(connections[2], card, streaming=False)
        task_ids: list[str] = []
        while min(ex.handled for ex in replicas) == 0 and len(task_ids) < 64:
            task_ids.append((await collect(a2a.send_message(ask("who")))).pop().task.id)
        assert all(ex.handled > 0 for ex in replicas), [ex.handled for ex in replicas]
        for task_id in task_ids:
            assert (
                await a2a.get_task(GetTaskRequest(id=task_id))
            ).status.state == TaskState.TASK_STATE_COMPLETED
    finally:
        for server in servers:
            await server.stop()
        for conn in connections:
            await conn.drain()


async def test_no_responders_fails_fast(nc: NATS) -> None:
    transport = NatsTransport(nc, a2a_subject("nobody-home"), timeout=WAIT_S)
    with pytest.raises(A2ANatsError, match="no agent serves"):
        await transport.get_task(GetTaskRequest(id="x"))
    with pytest.raises(A2ANatsError, match="no agent serves"):
        await collect(transport.subscribe(SubscribeToTaskRequest(id="x")))


async def serve_frames(nc: NATS, subject: str, frames: list[tuple[str, int]]) -> Any:
    """A bare NATS peer that answers any request with these stream frames (a misbehaving network, not a mock)."""
    result = {"jsonrpc": "2.0", "id": 1, "result": {"task": {"id": "t", "contextId": "c"}}}

    async def answer(msg: Msg) -> None:
        for frame, seq in frames:
            body = json.dumps(result).encode() if frame == "data" else b""
            await nc.publish(msg.reply, body, headers={STREAM_HEADER: frame, SEQ_HEADER: str(seq)})

    return await nc.subscribe(subject, cb=answer)


@pytest.mark.parametrize(
    ("frames", "complaint"),
    [
        ([("data", 1), ("data", 3), ("end", 4)], "expected frame 2, got 3"),
        ([("data", 1), ("heartbeat", 2)], "frames 2..2 were lost"),
        ([("data", 1)], "no frame or heartbeat for 0.5s"),
    ],
)
async def test_a_broken_stream_is_detected(
    nc: NATS, agent: str, frames: list[tuple[str, int]], complaint: str
) -> None:
    sub = await serve_frames(nc, a2a_subject(agent), frames)
    transport = NatsTransport(nc, a2a_subject(agent), stream_idle_timeout=0.5)
    received: list[StreamResponse] = []
    with pytest.raises(A2ANatsError, match=complaint):
        async for event in transport.send_message_streaming(ask("x")):
            received.append(event)
    assert [e.task.id for e in received] == ["t"]
    await sub.unsubscribe()


class FixedKey(CredentialService):
    def __init__(self, key: str) -> None:
        self.key = key

    async def get_credentials(
        self, security_scheme_name: str, context: ClientCallContext | None
    ) -> str | None:
        return self.key


async def test_a_bearer_key_is_required_when_the_card_declares_one(
    nc: NATS, agent: str, executor: EchoExecutor, nats_server: ManagedServer
) -> None:
    card = agent_card(agent, nats_server.url, bearer=True)
    authenticate = api_key_authenticator({"s3cret": "alice"})
    factory = nats_client_factory(nc, ClientConfig(streaming=False), timeout=WAIT_S)
    async with NatsA2AServer.for_executor(nc, agent, executor, card, authenticate=authenticate):
        with pytest.raises(A2AClientError, match="-32040"):
            await collect(factory.create(card).send_message(ask("hi")))
        with pytest.raises(A2AClientError, match="-32040"):
            await collect(factory.create(card, [AuthInterceptor(FixedKey("wrong"))]).send_message(ask("hi")))
        keyed = factory.create(card, [AuthInterceptor(FixedKey("s3cret"))])
        [event] = await collect(keyed.send_message(ask("hi")))
    assert event.task.status.state == TaskState.TASK_STATE_COMPLETED


async def test_trace_context_reaches_the_executor(
    nc: NATS, server: NatsA2AServer, card: AgentCard, executor: EchoExecutor, spans: InMemorySpanExporter
) -> None:
    with trace.get_tracer("test").start_as_current_span("caller") as caller:
        await collect(client(nc, card, streaming=False).send_message(ask("traced")))

    trace_id = caller.get_span_context().trace_id
    assert executor.trace_ids == [trace_id]
    finished = {(s.name, s.kind): s for s in spans.get_finished_spans()}
    sent = finished["a2a.nats SendMessage", trace.SpanKind.CLIENT]
    served = finished["a2a.nats SendMessage", trace.SpanKind.SERVER]
    assert sent.context is not None and sent.context.trace_id == trace_id
    assert served.parent is not None and served.parent.span_id == sent.context.span_id


def test_the_card_declares_the_binding_without_credentials() -> None:
    interface = nats_agent_interface("crew.role", "nats://user:pw@nats.crews.svc:4222")

    assert interface.protocol_binding == NATS_PROTOCOL_BINDING
    assert interface.url == "nats://nats.crews.svc:4222/crews.a2a.crew.role"
    assert subject_from_url(interface.url) == "crews.a2a.crew.role"
