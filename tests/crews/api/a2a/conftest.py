"""A crew served as an A2A agent over real HTTP, with a real coordinator; the test plays the role workers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from a2a.client import Client, ClientConfig, ClientFactory
from a2a.types import SendMessageRequest, StreamResponse
from nats.js import JetStreamContext

from bus import subjects
from bus.contracts.codec import decode
from bus.contracts.step import from_request
from bus.jetstream.streams import ensure_role_consumer, ensure_streams
from bus.settings import BusSettings
from crews.a2a.settings import A2ASettings
from crews.jobs.store import RedisJobStore
from crews.spec.load import load_crew_text
from roles.step.events import StepEvents
from roles.step.results import ResultStore, StepResult
from tests.crews.api.a2a.webhook import Receiver, serve_receiver
from tests.crews.api.conftest import CREW_YAML, StartApi

KEY = "a2a-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
WAIT_S = 30.0

MakeClient = Callable[..., Awaitable[Client]]


@pytest.fixture
async def digest(js: JetStreamContext, store: RedisJobStore) -> str:
    """The digest crew (inputs: topic required, words default 80), registered, its role queues ready."""
    spec = load_crew_text(CREW_YAML, "digest.yaml")
    await store.save_crew(spec)
    await ensure_streams(js, BusSettings())
    for role in spec.roles:
        await ensure_role_consumer(js, spec.name, role, BusSettings())
    return spec.name


@pytest.fixture
def a2a_settings() -> A2ASettings:
    """The A2A settings of the API under test (a test module may override this fixture)."""
    return A2ASettings(default_crew="digest", push_allow_private=False)


@pytest.fixture
async def api_url(start_api: StartApi, a2a_settings: A2ASettings) -> AsyncIterator[str]:
    """The API with one key, over real HTTP."""
    async with start_api(api_keys=(KEY,), a2a=a2a_settings) as http:
        yield str(http.base_url).rstrip("/")


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client that sends the key (given to the SDK's clients)."""
    async with httpx.AsyncClient(headers=AUTH, timeout=WAIT_S) as client:
        yield client


@pytest.fixture
def make_client(api_url: str, http: httpx.AsyncClient) -> MakeClient:
    """An a2a-sdk client of a crew, from its agent card, over one binding (JSONRPC or HTTP+JSON)."""

    async def make(crew: str = "digest", binding: str = "JSONRPC", **config: Any) -> Client:
        factory = ClientFactory(
            ClientConfig(httpx_client=http, supported_protocol_bindings=[binding], **config)
        )
        return await factory.create_from_url(f"{api_url}/a2a/{crew}")

    return make


async def take_step(js: JetStreamContext, store: RedisJobStore, crew: str, role: str, output: str) -> str:
    """Do the role's next step as a worker would: WORKING, the result recorded once, artifact, COMPLETED."""
    sub = await js.pull_subscribe_bind(
        durable=subjects.role_consumer(crew, role), stream=subjects.TASKS_STREAM
    )
    [msg] = await sub.fetch(1, timeout=WAIT_S)
    work = from_request(decode(msg.data, SendMessageRequest))
    events = StepEvents(js, work, "test-worker")
    await events.working(1)
    result = StepResult(output=output, role=role, worker="test-worker")
    recorded, _ = await ResultStore(store.redis, work.keys.results).record(work.step, result)
    await events.result(recorded)
    await msg.ack()
    await sub.unsubscribe()
    return work.step


async def collect(events: AsyncIterator[StreamResponse]) -> list[StreamResponse]:
    async def drain() -> list[StreamResponse]:
        return [event async for event in events]

    return await asyncio.wait_for(drain(), WAIT_S)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook receiver on loopback (``tests.crews.api.a2a.webhook``)."""
    async with serve_receiver(WAIT_S) as found:
        yield found
