"""What every API route depends on: the connections the app's lifespan opened, and the bearer-key check."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from bus.settings import BusSettings
from crews.api.errors import Unauthorized
from crews.api.settings import ApiSettings
from crews.coordinator.settings import CrewsSettings
from crews.jobs.store import RedisJobStore
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
    tools: ToolsSource | None = None
    """The operator's tools (MCP servers, Python tools), to check crew files' tool names; None: unchecked."""


def services(request: Request) -> Services:
    found = request.app.state.services
    assert isinstance(found, Services), "the app's lifespan has not run"
    return found


Deps = Annotated[Services, Depends(services)]

_bearer = HTTPBearer(
    auto_error=False,
    description="An API key from CREWS_API_KEYS, as `Authorization: Bearer <key>` (off when none is set).",
)


async def require_key(
    deps: Deps, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """Refuse the request (401) unless it carries one of the configured keys; open when none is set."""
    keys = deps.api.api_keys
    if not keys:
        return
    if credentials is None:
        raise Unauthorized("this endpoint needs an API key: send the header 'Authorization: Bearer <key>'")
    given = credentials.credentials.encode()
    if not any(hmac.compare_digest(given, key.encode()) for key in keys):
        raise Unauthorized("the API key is not valid: use one of the keys in the server's CREWS_API_KEYS")
