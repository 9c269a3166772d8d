"""What every API route depends on: the connections the app's lifespan opened, and the bearer-key check."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from bus.settings import BusSettings
from crews.a2a.settings import A2ASettings
from crews.api.errors import Forbidden, Unauthorized
from crews.api.limits import Limiter
from crews.api.settings import ApiKey, ApiSettings
from crews.coordinator.settings import CrewsSettings
from crews.jobs.owners import LOCAL, Principal, Scope
from crews.jobs.store import RedisJobStore
from crews.spec.limits import SpecLimits
from crews.spec.tools import ToolsSource


@dataclass
class Services:
    """One API process's connections and settings, opened by the lifespan and shared by every request."""

    api: ApiSettings
    crews: CrewsSettings
    bus: BusSettings
    nc: NATS
    js: JetStreamContext
    store: RedisJobStore
    a2a: A2ASettings
    tools: ToolsSource | None = None
    """The operator's tools (MCP servers, Python tools), to check crew files' tool names; None: unchecked."""
    limits: SpecLimits = field(default_factory=SpecLimits)
    limiter: Limiter = field(init=False)
    parse_slots: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self.limiter = Limiter(self.store, self.api)
        self.parse_slots = asyncio.Semaphore(self.api.api_parse_concurrency)


def services(request: Request) -> Services:
    found = request.app.state.services
    assert isinstance(found, Services), "the app's lifespan has not run"
    return found


Deps = Annotated[Services, Depends(services)]

_bearer = HTTPBearer(
    auto_error=False,
    description="An API key from CREWS_API_KEYS, as `Authorization: Bearer <key>` (off when none is set).",
)


def principal_of_key(keys: tuple[ApiKey, ...], given: str) -> Principal | None:
    """The principal whose key is ``given`` (compared in constant time), or None."""
    token = given.encode()
    found = None
    for key in keys:
        if hmac.compare_digest(token, key.key.get_secret_value().encode()):
            found = key.who
    return found


async def require_key(
    deps: Deps, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The caller (401 unless it carries one of the configured keys); without keys, the local user."""
    keys = deps.api.api_keys
    if not keys:
        return LOCAL
    if credentials is None:
        raise Unauthorized("this endpoint needs an API key: send the header 'Authorization: Bearer <key>'")
    found = principal_of_key(keys, credentials.credentials)
    if found is None:
        raise Unauthorized("the API key is not valid: use one of the keys in the server's CREWS_API_KEYS")
    return found


Caller = Annotated[Principal, Depends(require_key)]


def require(scope: Scope) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency: the caller, if its key has ``scope`` (or admin); 403 otherwise."""

    async def check(caller: Caller) -> Principal:
        if not caller.can(scope):
            raise Forbidden(
                f"the API key of {caller.name!r} does not have the scope {scope!r}: ask the operator for a "
                f"key with it (CREWS_API_KEYS)"
            )
        return caller

    return check


CrewWriter = Annotated[Principal, Depends(require("crews:write"))]
Submitter = Annotated[Principal, Depends(require("jobs:submit"))]
Reader = Annotated[Principal, Depends(require("jobs:read"))]
Decider = Annotated[Principal, Depends(require("approvals:decide"))]
