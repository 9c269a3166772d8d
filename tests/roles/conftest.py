"""Fixtures for the role worker tests: a scripted LLM over real HTTP, in-process workers on real NATS and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS

from inference.client import LLMPool
from inference.testing.script import Script
from inference.testing.server import ScriptedServer
from tests.roles.helpers import Workers, inference_settings


@pytest.fixture(scope="session")
def llm_server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


@pytest.fixture
def llm(llm_server: ScriptedServer) -> ScriptedServer:
    """The session's scripted LLM, reset to the echo script."""
    llm_server.set_script(Script())
    return llm_server


@pytest.fixture
async def workers(nc: NATS, redis_client: aioredis.Redis, llm: ScriptedServer) -> AsyncIterator[Workers]:
    async with LLMPool(inference_settings(llm.url)) as pool:
        running = Workers(nc, redis_client, pool)
        try:
            yield running
        finally:
            await running.stop()
