"""Fixtures shared by the end-to-end tests: the job store, and a stack of real processes on the test's servers.

Each test module defines its own ``llm`` fixture (the scripted server with its
script) and may override ``stack_env`` for the processes' environment.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis.asyncio as aioredis

from crews.jobs.store import RedisJobStore
from inference.testing.server import ScriptedServer
from tests.e2e.stack import Stack
from tests.servers import ManagedServer


@pytest.fixture
def stack_env() -> dict[str, str]:
    """Extra environment of every process the ``stack`` starts (override per module)."""
    return {}


@pytest.fixture
def stack(
    nats_server: ManagedServer, redis_server: ManagedServer, llm: ScriptedServer, stack_env: dict[str, str]
) -> Iterator[Stack]:
    """Coordinators and workers as real processes on the test's NATS, Redis and scripted LLM; all stopped after."""
    running = Stack(nats_server.url, redis_server.url, llm.url, extra_env=stack_env)
    try:
        yield running
    finally:
        running.stop_all()


@pytest.fixture
def store(redis_client: aioredis.Redis) -> RedisJobStore:
    return RedisJobStore(redis_client)
