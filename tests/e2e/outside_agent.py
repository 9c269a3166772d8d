"""A small outside A2A agent built with a2a-sdk alone, for crews to use as a member (over HTTP or NATS).

It says it is reading, sends a draft artifact, then its answer (the first line
of what it was sent, upper-cased) as a second artifact, and completes. It
requires a bearer key, and keeps every message it received for the test. Over
HTTP it may trace its requests with a tracer provider of its own, as an
outside agent instrumented with OpenTelemetry would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import add_a2a_routes_to_fastapi, create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    HTTPAuthSecurityScheme,
    Part,
    SecurityRequirement,
    SecurityScheme,
    StringList,
    Task,
)
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from nats.aio.client import Client as NATS
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider

from bus.a2a_nats.client import nats_agent_interface
from bus.a2a_nats.server import NatsA2AServer, api_key_authenticator
from crews.api.server import ApiServer

OUTSIDE_KEY = "outside-secret"


@dataclass
class Shouter(AgentExecutor):
    """Answers with the first line of the message, upper-cased; holds before answering while ``hold`` is set."""

    received: list[str] = field(default_factory=list)
    hold: asyncio.Event | None = None
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.task_id and context.context_id
        text = context.get_user_input()
        self.received.append(text)
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        await event_queue.enqueue_event(Task(id=context.task_id, context_id=context.context_id))
        await updater.start_work(updater.new_agent_message([Part(text="reading the task")]))
        await updater.add_artifact([Part(text="draft")], artifact_id="draft", name="draft")
        if self.hold is not None:
            await self.hold.wait()
        answer = text.splitlines()[0].upper()
        await updater.add_artifact([Part(text=answer)], artifact_id="answer", name="answer")
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        self.cancelled.set()
        assert context.task_id and context.context_id
        await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()


def shouter_card(interfaces: list[AgentInterface]) -> AgentCard:
    card = AgentCard(
        name="shouter",
        description="Shouts the first line of what it is told.",
        version="1.0.0",
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[AgentSkill(id="shout", name="shout", description="shouts", tags=["test"])],
        supported_interfaces=interfaces,
    )
    scheme = SecurityScheme(http_auth_security_scheme=HTTPAuthSecurityScheme(scheme="bearer"))
    card.security_schemes["key"].CopyFrom(scheme)
    card.security_requirements.append(SecurityRequirement(schemes={"key": StringList()}))
    return card


@asynccontextmanager
async def serve_over_http(
    executor: Shouter, key: str = OUTSIDE_KEY, tracer_provider: TracerProvider | None = None
) -> AsyncIterator[str]:
    """The agent over HTTP (JSON-RPC) on a free port, with its card, requiring ``key``; yields its base URL.

    With ``tracer_provider``, every request is a server span of that provider,
    continuing the caller's ``traceparent``.
    """
    app = FastAPI()

    @app.middleware("http")
    async def require_key(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if request.url.path.startswith("/rpc") and request.headers.get("authorization") != f"Bearer {key}":
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        return await call_next(request)

    if tracer_provider is not None:
        app.add_middleware(
            OpenTelemetryMiddleware, tracer_provider=tracer_provider, exclude_spans=["receive", "send"]
        )
    server = ApiServer(app)
    await server.start()  # the card needs the port; routes can be added while it serves
    card = shouter_card(
        [AgentInterface(url=f"{server.url}/rpc", protocol_binding="JSONRPC", protocol_version="1.0")]
    )
    handler = DefaultRequestHandler(agent_executor=executor, task_store=InMemoryTaskStore(), agent_card=card)
    add_a2a_routes_to_fastapi(
        app,
        agent_card_routes=create_agent_card_routes(card),
        jsonrpc_routes=create_jsonrpc_routes(handler, "/rpc"),
    )
    try:
        yield server.url
    finally:
        await server.stop()
        await handler.aclose()


@asynccontextmanager
async def serve_over_nats(nc: NATS, name: str, nats_url: str, executor: Shouter) -> AsyncIterator[None]:
    card = shouter_card([nats_agent_interface(name, nats_url)])
    authenticate = api_key_authenticator({OUTSIDE_KEY: "crew"})
    async with NatsA2AServer.for_executor(nc, name, executor, card, authenticate=authenticate):
        yield
