"""The HTTP API: crews, jobs, job events (SSE), health, readiness and metrics. ``crews api`` serves it.

:func:`create_app` builds the FastAPI app from its settings; its lifespan
connects to NATS (creating the JetStream streams if they are missing) and to
Redis. The API keeps no state of its own, so it scales on HTTP load. The
routes live in ``crews.api.routes`` (one module per resource); the one table
from our exceptions to HTTP answers in ``crews.api.errors``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import metadata

from fastapi import Depends, FastAPI

from bus.connect import connect
from bus.jetstream.streams import prepare_streams
from bus.settings import BusSettings
from crews.a2a.settings import A2ASettings
from crews.api import errors as api_errors
from crews.api.a2a_mount import crews_on_nats, mount_a2a, push_delivery
from crews.api.deps import Services, require_key
from crews.api.errors import BodyTooLarge
from crews.api.guard import RequestGuard
from crews.api.metrics import ASGIApp, Message, Receive, RequestMetrics, Scope, Send
from crews.api.routes import approvals as api_approvals
from crews.api.routes import crews as api_crews
from crews.api.routes import events as api_events
from crews.api.routes import jobs as api_jobs
from crews.api.routes import ops as api_ops
from crews.api.settings import ApiSettings
from crews.api.tracing import SpanRoute, instrument
from crews.api.web.routes import mount_web
from crews.coordinator.settings import CrewsSettings
from crews.jobs.store import RedisJobStore
from crews.spec.tools import ToolsSource

DESCRIPTION = """\
Run multi-agent crews: register a crew from its YAML file, submit jobs, and
watch them run as Server-Sent Events of A2A task updates.

Every endpoint but `/healthz` and `/readyz` needs `Authorization: Bearer <key>`
when the server has `CREWS_API_KEYS`; each key names a principal and its
scopes, and a principal sees only its own jobs. A POST must send JSON
(`application/json`; a crew file may be `application/yaml`). Errors are JSON: `{"error": code,
"message": what to fix, "issues": [crew file mistakes with line and field]}`.
"""

TAGS = [
    {"name": "crews", "description": "Crew definitions (the crew file, YAML or JSON)."},
    {"name": "jobs", "description": "Jobs of a crew: submit, follow, cancel."},
    {"name": "operations", "description": "Health, readiness and Prometheus metrics."},
]


def create_app(
    api: ApiSettings | None = None,
    crews: CrewsSettings | None = None,
    bus: BusSettings | None = None,
    a2a: A2ASettings | None = None,
    *,
    tools: ToolsSource | None = None,
) -> FastAPI:
    """The API app; settings default to the environment (``CREWS_*``).

    ``tools``: what tools exist (the operator's MCP servers and Python tools, wired in by
    ``crews api``); registering a crew that names others is refused. None: names are not checked.
    """
    api, crews, bus = api or ApiSettings(), crews or CrewsSettings(), bus or BusSettings()
    a2a = a2a or A2ASettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nc = await connect(bus, "crews-api")
        store = RedisJobStore.from_settings(crews, job_ttl_s=crews.job_ttl_s)
        try:
            js = nc.jetstream()
            await prepare_streams(js, bus)
            app.state.services = Services(
                api=api, crews=crews, bus=bus, nc=nc, js=js, store=store, a2a=a2a, tools=tools
            )
            async with crews_on_nats(app.state.services), push_delivery(app.state.services):
                yield
        finally:
            if tools is not None:
                await tools.aclose()
            await store.aclose()
            await nc.drain()

    app = FastAPI(
        title="crews",
        version=_version(),
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    metrics = RequestMetrics()
    app.state.request_metrics = metrics
    app.state.open_access = not api.api_keys  # no keys: loopback only (crews.api.server.check_exposure)
    api_errors.install(app)
    auth = [Depends(require_key)]
    for router in (api_crews.router, api_jobs.router, api_events.router, api_approvals.router):
        app.include_router(router, dependencies=auth)
    app.include_router(api_ops.router)
    mount_web(app)
    mount_a2a(app, api.api_keys)
    app.add_middleware(SpanRoute)
    app.add_middleware(RequestGuard, allowed_hosts=api.api_allowed_hosts)
    app.add_middleware(BodyLimit, max_bytes=api.api_max_body_bytes)
    app.add_middleware(_Measured, metrics=metrics)
    instrument(app)
    return app


def _version() -> str:
    try:
        return metadata.version("crews")
    except metadata.PackageNotFoundError:
        return "0.0.0"


class _Measured:
    def __init__(self, app: ASGIApp, metrics: RequestMetrics) -> None:
        self._app = metrics.middleware(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


class BodyLimit:
    """Refuse a request body over ``max_bytes`` with 413, before any route reads it.

    A declared ``Content-Length`` over the limit is refused at once; a chunked
    body is read up to the limit and handed on whole.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"").decode("latin-1")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([], message, receive), send)  # client went away
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = bool(message.get("more_body", False))
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], None, receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = f"{self.max_bytes} bytes" if self.max_bytes % 1024 else f"{self.max_bytes // 1024} KiB"
        error = BodyTooLarge(
            f"the request body is over the limit of {limit} (CREWS_API_MAX_BODY_BYTES): send a smaller one"
        )
        await api_errors.error_response(error)(scope, receive, send)


def _replay(messages: list[Message], last: Message | None, receive: Receive) -> Receive:
    """A ``receive`` that gives ``messages`` (then ``last``) first, then reads on."""
    pending = [*messages, *([last] if last is not None else [])]

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
