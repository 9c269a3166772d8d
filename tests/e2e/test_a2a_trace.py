"""One trace across every hop of an A2A call: the caller (over HTTP, or on NATS), the API, the
coordinator, the workers, an outside member agent over HTTP and the task's webhook.

Every process exports to the real OTLP sink: the crews processes through
``OTEL_EXPORTER_OTLP_ENDPOINT``, the outside caller and the outside member
(both in this test process) through tracer providers of their own, as outside
parties instrumented with OpenTelemetry would. The caller sends ``traceparent``
through OpenTelemetry's httpx instrumentation; nothing here fakes a span.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import pytest
from a2a.client import ClientConfig, ClientFactory
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    Message,
    Part,
    Role,
    SendMessageRequest,
    StreamResponse,
    TaskPushNotificationConfig,
    TaskState,
)
from fastapi import FastAPI, Request, Response
from nats.aio.client import Client as NATS
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.httpx import AsyncOpenTelemetryTransport
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bus.a2a_nats.client import nats_agent_interface, nats_client_factory
from crews.api.server import ApiServer
from crews.jobs.store import RedisJobStore
from crews.local.servers import free_port
from inference.testing.script import Script
from inference.testing.server import ScriptedServer
from tests.e2e.otlp_sink import OtlpSink, ReceivedSpan
from tests.e2e.outside_agent import OUTSIDE_KEY, Shouter, serve_over_http
from tests.e2e.stack import Stack, register
from tests.servers import ManagedServer

RELAYED = """
name: relayed
inputs:
  topic: {description: What to write about}
roles:
  shouter: {role: Outside writer, goal: "Write about {topic}", engine: a2a, agent: shouter}
tasks:
  write: {description: "Write about {topic}.", expected_output: One loud line., agent: shouter}
"""
HOOKED = """
name: hooked
inputs:
  topic: {description: What to write about}
roles:
  writer: {role: Writer, goal: "Write about {topic}"}
tasks:
  write: {description: "Write about {topic}.", expected_output: One line., agent: writer}
"""
WAIT_S = 60.0
HTTPX_SCOPE = "opentelemetry.instrumentation.httpx"
ASGI_SCOPE = "opentelemetry.instrumentation.asgi"


@dataclass
class Outsider:
    """An outside party's own tracer provider, exporting to the sink under ``service``."""

    service: str
    sink: OtlpSink
    provider: TracerProvider = field(init=False)

    def __post_init__(self) -> None:
        self.provider = TracerProvider(resource=Resource.create({"service.name": self.service}))
        exporter = OTLPSpanExporter(endpoint=f"{self.sink.endpoint}/v1/traces")
        self.provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=100))

    async def flush(self) -> None:
        await asyncio.to_thread(self.provider.shutdown)


@dataclass
class Webhook:
    """A webhook receiver: every delivery's headers and body."""

    url: str = ""
    seen: list[tuple[dict[str, str], dict[str, object]]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def until_completed(self) -> None:
        async def completed() -> None:
            while not any(_state(body) == "TASK_STATE_COMPLETED" for _, body in self.seen):
                self.arrived.clear()
                await self.arrived.wait()

        await asyncio.wait_for(completed(), WAIT_S)


def _state(body: dict[str, object]) -> str:
    update = body.get("statusUpdate")
    status = update.get("status", {}) if isinstance(update, dict) else {}
    return str(status.get("state", "")) if isinstance(status, dict) else ""


@asynccontextmanager
async def webhook() -> AsyncIterator[Webhook]:
    found = Webhook()
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> Response:
        found.seen.append((dict(request.headers), json.loads(await request.body())))
        found.arrived.set()
        return Response(status_code=204)

    async with ApiServer(app) as server:
        found.url = f"{server.url}/hook"
        yield found


@dataclass
class Traced:
    """A stack whose processes export to ``sink``, its API on ``api``."""

    stack: Stack
    sink: OtlpSink
    api: str


@asynccontextmanager
async def traced_stack(
    nats_server: ManagedServer, redis_server: ManagedServer, llm: ScriptedServer, env: dict[str, str]
) -> AsyncIterator[Traced]:
    port = free_port()
    with OtlpSink() as sink:
        stack = Stack(
            nats_server.url,
            redis_server.url,
            llm.url,
            {"OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint, "CREWS_API_PORT": str(port), **env},
        )
        try:
            yield Traced(stack, sink, f"http://127.0.0.1:{port}")
        finally:
            stack.stop_all()  # SIGTERM: each process flushes its spans before it exits


async def ask_crew(
    caller: Outsider, api: str, crew: str, request: SendMessageRequest
) -> tuple[StreamResponse, str, str]:
    """The outside caller's blocking SendMessage in a span of its own: the answer, its trace and span id."""
    transport = AsyncOpenTelemetryTransport(httpx.AsyncHTTPTransport(), tracer_provider=caller.provider)
    async with httpx.AsyncClient(transport=transport, timeout=WAIT_S) as http:
        config = ClientConfig(httpx_client=http, streaming=False, supported_protocol_bindings=["JSONRPC"])
        with caller.provider.get_tracer("outside.caller").start_as_current_span("ask the crew") as span:
            client = await ClientFactory(config).create_from_url(f"{api}/a2a/{crew}")
            [answer] = [event async for event in client.send_message(request)]
    context = span.get_span_context()
    return answer, format(context.trace_id, "032x"), format(context.span_id, "016x")


def ask(text: str) -> SendMessageRequest:
    message = Message(message_id=uuid.uuid4().hex, role=Role.ROLE_USER, parts=[Part(text=text)])
    return SendMessageRequest(message=message)


def children(spans: list[ReceivedSpan], parent: ReceivedSpan) -> list[ReceivedSpan]:
    return [s for s in spans if s.parent_span_id == parent.span_id]


def one(
    spans: list[ReceivedSpan], service: str, name: str, parent: ReceivedSpan | None = None
) -> ReceivedSpan:
    found = [
        s
        for s in spans
        if s.service == service and s.name == name and (parent is None or s.parent_span_id == parent.span_id)
    ]
    assert len(found) == 1, f"{service}/{name}: {found} among {[(s.service, s.name) for s in spans]}"
    return found[0]


@dataclass
class Hop:
    """The spans of one trace, by id, to walk parent links."""

    spans: list[ReceivedSpan]

    def parent(self, span: ReceivedSpan) -> ReceivedSpan:
        [found] = [s for s in self.spans if s.span_id == span.parent_span_id]
        return found

    def ancestors(self, span: ReceivedSpan) -> Iterator[ReceivedSpan]:
        while span.parent_span_id:
            span = self.parent(span)
            yield span


@pytest.fixture
def in_process(spans: InMemorySpanExporter) -> InMemorySpanExporter:
    """This process's global provider (an SDK one, always): a2a-sdk's own client spans land there."""
    return spans


def through_sdk(in_process: InMemorySpanExporter, span_id: str, ancestor: str) -> bool:
    """Whether ``span_id`` is ``ancestor`` or descends from it through a2a-sdk's spans in this process."""
    parents = {
        format(s.context.span_id, "016x"): format(s.parent.span_id, "016x") if s.parent else ""
        for s in in_process.get_finished_spans()
        if s.context is not None
    }
    while span_id and span_id != ancestor:
        span_id = parents.get(span_id, "")
    return span_id == ancestor


async def test_one_trace_covers_an_a2a_caller_the_crew_and_its_outside_member(
    nats_server: ManagedServer,
    redis_server: ManagedServer,
    store: RedisJobStore,
    in_process: InMemorySpanExporter,
) -> None:
    await register(store, RELAYED, "relayed.yaml")
    with ScriptedServer() as llm:
        async with traced_stack(nats_server, redis_server, llm, {"SHOUTER_KEY": OUTSIDE_KEY}) as traced:
            caller, member = Outsider("outside-caller", traced.sink), Outsider("outside-shouter", traced.sink)
            shouter = Shouter()
            async with serve_over_http(shouter, tracer_provider=member.provider) as url:
                agent = {
                    "name": "shouter",
                    "authorization_env": "SHOUTER_KEY",
                    "url": url,
                    "allow_private": True,
                }
                traced.stack.extra_env["CREWS_A2A_AGENTS"] = json.dumps([agent])
                traced.stack.coordinator()
                traced.stack.worker("relayed", "shouter")
                traced.stack.start("api", ready="api ready on")
                answer, trace_id, asked_id = await ask_crew(caller, traced.api, "relayed", ask("bees"))
            await asyncio.gather(caller.flush(), member.flush())
    assert answer.task.status.state == TaskState.TASK_STATE_COMPLETED
    assert answer.task.artifacts[-1].parts[0].text == "WRITE ABOUT BEES."

    spans = [s for s in traced.sink.spans if s.trace_id == trace_id]
    hop = Hop(spans)
    asked = one(spans, "outside-caller", "ask the crew")
    assert (asked.span_id, asked.parent_span_id) == (asked_id, "")  # the caller's span is the root
    # caller → API: the API's server span of the JSON-RPC call is a child of the caller's POST span, which
    # descends from the caller's span (a2a-sdk's client spans, made by the global provider, may come between)
    [posted] = [
        s
        for s in spans
        if s.service == "outside-caller"
        and s.scope == HTTPX_SCOPE
        and s.name.endswith("POST")
        and through_sdk(in_process, s.parent_span_id, asked.span_id)
    ]
    [server] = [s for s in children(spans, posted) if s.service == "crews-api"]
    assert server.scope == ASGI_SCOPE
    submitted = one(spans, "crews-api", "submit job")
    assert server in hop.ancestors(submitted)  # a2a-sdk's dispatcher spans come between
    assert server.name == "POST /{crew}"  # the route template, not the crew
    # API → coordinator (NATS) → worker (NATS)
    planned = one(spans, "crews-coordinator", "process crews.jobs.submit", parent=submitted)
    worker = "crews-role-relayed-shouter"
    step = one(spans, worker, "process crews.tasks.relayed.shouter")
    assert any(s.service == "crews-coordinator" for s in hop.ancestors(step)), (
        "the step's span is not the coordinator's"
    )
    invoked = one(spans, worker, "invoke_agent shouter", parent=step)
    # worker → outside member (HTTP): its server spans are children of the worker's client spans
    calls = [s for s in spans if s.service == worker and s.scope == HTTPX_SCOPE]
    assert calls and all(invoked in hop.ancestors(call) for call in calls)
    outside = [s for s in spans if s.service == "outside-shouter" and s.scope == ASGI_SCOPE]
    assert outside and all(hop.parent(s) in calls for s in outside)
    assert any(s.name.startswith("POST") for s in outside)  # the JSON-RPC call itself, not only the card
    # nothing of this job is in another trace
    job = answer.task.id
    assert all(s.trace_id == trace_id for s in traced.sink.spans if job in s.attributes.get("crews.job", ""))
    assert planned in hop.ancestors(step)


async def test_a_call_on_nats_continues_the_callers_trace_and_the_webhook_carries_it(
    nats_server: ManagedServer,
    redis_server: ManagedServer,
    store: RedisJobStore,
    nc: NATS,
    spans: InMemorySpanExporter,
) -> None:
    await register(store, HOOKED, "hooked.yaml")
    script = Script.model_validate({"rules": [{"role": "writer", "replies": ["Bees hum."]}]})
    with ScriptedServer(script) as llm:
        env = {"CREWS_A2A_PUSH_ALLOW_PRIVATE": "true"}
        async with traced_stack(nats_server, redis_server, llm, env) as traced, webhook() as hook:
            caller = Outsider("outside-caller", traced.sink)
            traced.stack.coordinator()
            traced.stack.worker("hooked", "writer")
            traced.stack.start("api", ready="api ready on")
            request = ask("bees")
            request.configuration.task_push_notification_config.CopyFrom(
                TaskPushNotificationConfig(id="hook", url=hook.url)
            )
            card = AgentCard(name="hooked", capabilities=AgentCapabilities())
            card.supported_interfaces.append(nats_agent_interface("hooked", nats_server.url))
            client = nats_client_factory(nc, ClientConfig(streaming=False), timeout=WAIT_S).create(card)
            with caller.provider.get_tracer("outside.caller").start_as_current_span("ask the crew") as asked:
                [answer] = [event async for event in client.send_message(request)]
            await hook.until_completed()
            await caller.flush()
    assert answer.task.status.state == TaskState.TASK_STATE_COMPLETED
    trace_id = format(asked.get_span_context().trace_id, "032x")
    # the binding's client span (this process's own provider: in memory) carried the caller's trace …
    [sent] = [s for s in spans.get_finished_spans() if s.name == "a2a.nats SendMessage"]
    assert sent.context is not None and sent.parent is not None
    assert (sent.context.trace_id, sent.parent.span_id) == (
        asked.get_span_context().trace_id,
        asked.get_span_context().span_id,
    )
    # … into the API's server span on crews.a2a.hooked, and the job it submitted
    hop = Hop([s for s in traced.sink.spans if s.trace_id == trace_id])
    served = one(hop.spans, "crews-api", "a2a.nats SendMessage")
    assert served.parent_span_id == format(sent.context.span_id, "016x")
    assert served in hop.ancestors(one(hop.spans, "crews-api", "submit job"))

    assert hook.seen
    for headers, body in hook.seen:
        version, traced_id, parent_id, _ = headers["traceparent"].split("-")
        assert (version, traced_id) == ("00", trace_id), f"a delivery of {body} is in another trace"
        [post] = [s for s in hop.spans if s.span_id == parent_id]  # the API's client span of the POST
        assert (post.service, post.scope) == ("crews-api", HTTPX_SCOPE)
        delivery = hop.parent(post)
        assert delivery.name == "deliver push notification"
        assert answer.task.id in delivery.attributes["crews.job"]
        # the delivery continues the trace of the event it reports: a span of the job's processes
        assert hop.parent(delivery).service in {"crews-api", "crews-coordinator", "crews-role-hooked-writer"}
