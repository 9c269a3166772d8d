"""A webhook receiver for the push-notification tests: a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from a2a.types import AuthenticationInfo, TaskPushNotificationConfig
from fastapi import FastAPI, Request, Response

from crews.api.server import ApiServer

SECRET = "the-webhook-secret"
TOKEN = "caller-token"


@dataclass
class Receiver:
    """A webhook: records every delivery; answers 503 to the first ``fail_first`` of them."""

    url: str = ""
    fail_first: int = 0
    seen: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    wait_s: float = 30.0
    """The longest wait for the next delivery."""

    def accepted(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.seen[self.fail_first :]]

    def states(self) -> list[str]:
        return [d["statusUpdate"]["status"]["state"] for d in self.accepted() if "statusUpdate" in d]

    def artifacts(self) -> list[str]:
        return [d["artifactUpdate"]["artifact"]["name"] for d in self.accepted() if "artifactUpdate" in d]

    async def until(self, state: str) -> None:
        while state not in self.states():
            await self.next_delivery()

    async def next_delivery(self) -> None:
        self.arrived.clear()
        await asyncio.wait_for(self.arrived.wait(), self.wait_s)


@asynccontextmanager
async def serve_receiver(wait_s: float) -> AsyncIterator[Receiver]:
    """A receiver listening on a free loopback port."""
    found = Receiver(wait_s=wait_s)
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> Response:
        found.seen.append((dict(request.headers), await request.body()))
        found.arrived.set()
        return Response(status_code=503 if len(found.seen) <= found.fail_first else 204)

    async with ApiServer(app) as server:
        found.url = f"{server.url}/hook"
        yield found


def config(receiver: Receiver, task: str, config_id: str = "hook-1") -> TaskPushNotificationConfig:
    return TaskPushNotificationConfig(
        task_id=task,
        id=config_id,
        url=receiver.url,
        token=TOKEN,
        authentication=AuthenticationInfo(scheme="HMAC-SHA256", credentials=SECRET),
    )


def assert_signed(receiver: Receiver) -> None:
    for headers, body in receiver.seen:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["x-crews-signature"] == expected
        assert headers["x-a2a-notification-token"] == TOKEN
