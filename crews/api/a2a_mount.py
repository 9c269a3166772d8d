"""The A2A endpoints of every crew, mounted under ``/a2a`` (and served on NATS as ``crews.a2a.<crew>``).

| path | what |
|---|---|
| ``GET /a2a/<crew>/.well-known/agent-card.json`` | the crew's agent card (``crews.a2a.card``); public |
| ``GET /a2a/<crew>/http/.well-known/agent-card.json`` | the same card without the NATS interface, for clients that refuse a card naming another origin (Google ADK) |
| ``GET /.well-known/agent-card.json`` | the card of the crew ``CREWS_A2A_DEFAULT_CREW`` names (404 when none) |
| ``POST /a2a/<crew>`` | A2A JSON-RPC 2.0 (1.0 methods; 0.3 method names, without ``A2A-Version``, as 0.3) |
| ``/a2a/<crew>/message:send``, ``…/message:stream``, ``…/tasks``, ``…/tasks/<id>``, ``…/tasks/<id>:cancel``, ``…/tasks/<id>:subscribe``, ``…/tasks/<id>/pushNotificationConfigs[/<config>]`` | A2A HTTP+JSON (REST) |

The routes and the JSON-RPC/REST dispatch are a2a-sdk's
(``create_jsonrpc_routes``, ``create_rest_routes``); the answers come from
``crews.a2a.handler.CrewRequestHandler``. Calls but the card need
``Authorization: Bearer <key>`` when the API has keys (401 otherwise, with
``WWW-Authenticate: Bearer``; the card declares the scheme). What the SDK's
routes would let through or answer wrongly is fixed at the edge
(``crews.api.a2a_edge``). While the API runs, it also serves every crew on NATS
(``crews_on_nats``) and delivers push notifications (``push_delivery``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import metadata

from a2a.auth.user import UnauthenticatedUser, User
from a2a.server.context import ServerCallContext
from a2a.server.request_handlers.response_helpers import agent_card_to_dict
from a2a.server.routes import DefaultServerCallContextBuilder, create_jsonrpc_routes, create_rest_routes
from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH, PROTOCOL_VERSION_CURRENT, VERSION_HEADER
from fastapi import FastAPI
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from bus.a2a_nats.server import Authenticator, NatsA2AServer
from bus.subjects import A2A_PREFIX
from crews.a2a.card import crew_card
from crews.a2a.handler import CREW_HEADER, CREW_STATE, CrewAgentDeps, CrewRequestHandler, PrincipalUser
from crews.a2a.push.delivery import PushDelivery
from crews.api.a2a_edge import A2AEdge, conflict_on_not_cancelable
from crews.api.deps import Services, principal_of_key
from crews.api.errors import Unauthorized, error_response
from crews.api.settings import ApiKey
from crews.errors import CrewNotFound

PREFIX = "/a2a"
HTTP_ONLY = "/http"
"""``/a2a/<crew>/http/.well-known/agent-card.json``: the card without the NATS interface."""
USER_SCOPE = "crews.a2a.user"


def mount_a2a(app: FastAPI, keys: tuple[ApiKey, ...]) -> None:
    """Serve every crew's A2A endpoints under ``/a2a`` of ``app`` (whose lifespan opens the services)."""

    def services() -> Services:
        found = app.state.services
        assert isinstance(found, Services), "the app's lifespan has not run"
        return found

    handler = CrewRequestHandler(lambda: agent_deps(services()))
    builder = CrewCallContextBuilder()
    rest = create_rest_routes(handler, context_builder=builder, path_prefix="/{crew}")
    routes: list[BaseRoute] = [
        Route(f"/{{crew}}{AGENT_CARD_WELL_KNOWN_PATH}", _card_endpoint(services), methods=["GET"]),
        Route(f"/{{crew}}{HTTP_ONLY}{AGENT_CARD_WELL_KNOWN_PATH}", _card_endpoint(services), methods=["GET"]),
        *create_jsonrpc_routes(handler, "/{crew}", context_builder=builder, enable_v0_3_compat=True),
        *conflict_on_not_cancelable([route for route in rest if not isinstance(route, Mount)]),  # no tenants
    ]
    middleware = [Middleware(BearerKeys, keys=keys), Middleware(A2AEdge)]
    app.mount(PREFIX, Starlette(routes=routes, middleware=middleware))
    app.add_api_route(
        AGENT_CARD_WELL_KNOWN_PATH,
        _card_endpoint(services, default=True),
        methods=["GET"],
        include_in_schema=False,
    )


def agent_deps(services: Services) -> CrewAgentDeps:
    """The part of the API's services the crews' A2A handler uses."""
    return CrewAgentDeps(
        js=services.js,
        store=services.store,
        crews=services.crews,
        scan_jobs=services.api.api_scan_jobs,
        push=services.a2a,
        open_access=not services.api.api_keys,
    )


@asynccontextmanager
async def push_delivery(services: Services) -> AsyncIterator[None]:
    """Deliver the tasks' push notifications while the API runs (``crews.a2a.push.delivery``)."""
    crews = services.crews
    delivery = PushDelivery(
        services.js, services.store, services.a2a, crews.job_ttl_s + int(crews.job_timeout_s)
    )
    ready = asyncio.Event()
    running = asyncio.create_task(delivery.run(ready))
    await asyncio.wait({running, asyncio.ensure_future(ready.wait())}, return_when=asyncio.FIRST_COMPLETED)
    if running.done():
        running.result()  # raises what stopped it from starting
    try:
        yield
    finally:
        delivery.stop()
        await running


@asynccontextmanager
async def crews_on_nats(services: Services) -> AsyncIterator[None]:
    """Serve every crew on ``crews.a2a.<crew>`` while the API runs (the same handler as over HTTP)."""
    keys = services.api.api_keys
    authenticate = principal_authenticator(keys) if keys else None
    server = CrewsNatsServer(
        services.nc, CrewRequestHandler(lambda: agent_deps(services)), authenticate=authenticate
    )
    async with server:
        yield


class CrewsNatsServer(NatsA2AServer):
    """Every crew on NATS: one subscription to ``crews.a2a.*`` in one queue group shared by the API replicas.

    The crew is the subject's last token; the server puts it in the ``Crews-Crew``
    header of each request, over any the caller sent. Roles (``crews.a2a.<crew>.<role>``)
    have two tokens and are not matched.
    """

    def __init__(self, nc: NATS, handler: CrewRequestHandler, *, authenticate: Authenticator | None) -> None:
        super().__init__(nc, "crews", handler, queue=f"{A2A_PREFIX}.crews-api", authenticate=authenticate)
        self.subject = f"{A2A_PREFIX}.*"

    async def _on_request(self, msg: Msg) -> None:
        headers = {k: v for k, v in (msg.headers or {}).items() if k.lower() != CREW_HEADER.lower()}
        msg.headers = {**headers, CREW_HEADER: msg.subject.removeprefix(f"{A2A_PREFIX}.")}
        await super()._on_request(msg)


class CrewCallContextBuilder(DefaultServerCallContextBuilder):
    """The SDK's call context plus the crew (from the path); ``A2A-Version`` defaults to 1.0; no credentials."""

    def build(self, request: Request) -> ServerCallContext:
        context = super().build(request)
        headers = context.state["headers"]
        headers.pop("authorization", None)  # secrets stay out of the handler's context
        if not headers.get(VERSION_HEADER.lower()):
            headers[VERSION_HEADER.lower()] = PROTOCOL_VERSION_CURRENT
        context.state[CREW_STATE] = request.path_params.get("crew", "")
        return context

    def build_user(self, request: Request) -> User:
        user = request.scope.get(USER_SCOPE)
        return user if isinstance(user, User) else UnauthenticatedUser()


def principal_authenticator(keys: tuple[ApiKey, ...]) -> Authenticator:
    """An ``Authenticator`` for the NATS binding: the principal of the bearer key, as a ``PrincipalUser``."""

    async def authenticate(token: str | None) -> User | None:
        found = principal_of_key(keys, token) if token is not None else None
        return PrincipalUser(found) if found is not None else None

    return authenticate


class BearerKeys:
    """401 for an A2A call without one of ``keys`` as its bearer token (open when there are none); the card is public."""

    def __init__(self, app: ASGIApp, keys: tuple[ApiKey, ...]) -> None:
        self.app = app
        self._keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._keys or scope["path"].endswith(AGENT_CARD_WELL_KNOWN_PATH):
            await self.app(scope, receive, send)
            return
        scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            refusal = Unauthorized(
                "this A2A endpoint needs an API key: send 'Authorization: Bearer <key>' "
                "(the agent card's securitySchemes says so)"
            )
            await error_response(refusal)(scope, receive, send)
            return
        found = principal_of_key(self._keys, token.strip())
        if found is None:
            refusal = Unauthorized(
                "the API key is not valid: use one of the keys in the server's CREWS_API_KEYS"
            )
            await error_response(refusal)(scope, receive, send)
            return
        scope[USER_SCOPE] = PrincipalUser(found)
        await self.app(scope, receive, send)


def _card_endpoint(services: Callable[[], Services], *, default: bool = False) -> Callable[[Request], object]:
    """The card of the crew in the path (``default``: of ``CREWS_A2A_DEFAULT_CREW``, at the origin)."""

    async def card(request: Request) -> Response:
        deps = services()
        crew = deps.a2a.default_crew if default else request.path_params["crew"]
        if not crew:
            return error_response(
                CrewNotFound(
                    "this API names no default crew (CREWS_A2A_DEFAULT_CREW): "
                    "read a crew's card at /a2a/<crew>/.well-known/agent-card.json"
                )
            )
        try:
            spec = await deps.store.get_crew(crew)
        except CrewNotFound as exc:
            return error_response(exc)
        public = deps.crews.a2a_public_url.rstrip("/") or (
            str(request.base_url).rstrip("/") if default else ""
        )
        agent_url = f"{public}{PREFIX}/{crew}" if public else _agent_url(request, crew)
        http_only = request.url.path.endswith(HTTP_ONLY + AGENT_CARD_WELL_KNOWN_PATH)
        nats_url = None if http_only else deps.bus.nats_url
        card = crew_card(spec, agent_url, nats_url=nats_url, auth=bool(deps.api.api_keys), version=_version())
        return JSONResponse(agent_card_to_dict(card))

    return card


def _agent_url(request: Request, crew: str) -> str:
    """``http(s)://host[:port]/…/a2a/<crew>`` as the client reached it."""
    path = request.url.path
    return str(
        request.url.replace(path=path[: path.index(f"{PREFIX}/{crew}/")] + f"{PREFIX}/{crew}", query="")
    )


def _version() -> str:
    try:
        return metadata.version("crews")
    except metadata.PackageNotFoundError:
        return "0.0.0"
