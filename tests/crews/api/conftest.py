"""The API served over real HTTP (uvicorn on a free port) against the session's NATS and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from bus.settings import BusSettings
from crews.a2a.settings import A2ASettings
from crews.api.app import create_app
from crews.api.server import ApiServer
from crews.api.settings import ApiSettings
from crews.coordinator.coordinator import Coordinator
from crews.coordinator.settings import CrewsSettings
from crews.jobs.store import RedisJobStore
from tests.servers import ManagedServer

CREW_YAML = """\
# A two-step crew; 'topic' has no default, so every job must give it.
name: digest
description: Research a topic and write about it.
inputs:
  topic:
    description: What to write about
  words:
    type: integer
    default: 80
roles:
  researcher:
    role: Researcher
    goal: Find facts about {topic}.
  writer:
    role: Writer
    goal: Write {words} words.
tasks:
  research:
    description: List three facts about {topic}.
    expected_output: Three bullets.
    agent: researcher
  write:
    description: Write about {topic} in {words} words.
    expected_output: One paragraph.
    agent: writer
"""

StartApi = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def start_api(
    nc: NATS, redis_client: aioredis.Redis, nats_server: ManagedServer, redis_server: ManagedServer
) -> StartApi:
    """Start an API with these ApiSettings fields (the rest fixed, not from the environment)."""

    @asynccontextmanager
    async def started(
        redis_url: str | None = None, a2a: A2ASettings | None = None, **api_fields: Any
    ) -> AsyncIterator[httpx.AsyncClient]:
        api = ApiSettings(**{"api_keys": (), "api_sse_ping_s": 15.0, **api_fields})
        crews = CrewsSettings(redis_url=redis_url or redis_server.url)
        app = create_app(
            api, crews, BusSettings(nats_url=nats_server.url), a2a or A2ASettings(default_crew="")
        )
        async with ApiServer(app) as server, httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            yield client

    return started


@pytest.fixture
async def client(start_api: StartApi) -> AsyncIterator[httpx.AsyncClient]:
    async with start_api() as http:
        yield http


@pytest.fixture
def js(nc: NATS) -> JetStreamContext:
    return nc.jetstream()


@pytest.fixture
def store(redis_client: aioredis.Redis) -> RedisJobStore:
    return RedisJobStore(redis_client)


@pytest.fixture
async def crew(client: httpx.AsyncClient) -> str:
    """The digest crew, registered."""
    response = await client.post("/crews", content=CREW_YAML, headers={"content-type": "application/yaml"})
    assert response.status_code == 201, response.text
    return "digest"


async def submit(client: httpx.AsyncClient, crew: str = "digest", **inputs: Any) -> str:
    response = await client.post(f"/crews/{crew}/jobs", json={"inputs": {"topic": "bees", **inputs}})
    assert response.status_code == 202, response.text
    job: str = response.json()["id"]
    return job


@pytest.fixture
async def coordinator(
    js: JetStreamContext, store: RedisJobStore, nats_server: ManagedServer, redis_server: ManagedServer
) -> AsyncIterator[Coordinator]:
    """A coordinator running in the test process on the session servers."""
    running = Coordinator(
        js, store, CrewsSettings(redis_url=redis_server.url), BusSettings(nats_url=nats_server.url)
    )
    ready = asyncio.Event()
    task = asyncio.create_task(running.run(ready))
    await asyncio.wait({task, asyncio.ensure_future(ready.wait())}, return_when=asyncio.FIRST_COMPLETED)
    assert ready.is_set(), task.exception()
    try:
        yield running
    finally:
        running.stop()
        await task
