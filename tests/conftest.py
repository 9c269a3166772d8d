"""Shared fixtures: real NATS and Redis servers, clean per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.servers import ManagedServer, managed_nats, managed_redis


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--nats-url", default=None, help="use this NATS server instead of starting one")
    parser.addoption("--redis-url", default=None, help="use this Redis server instead of starting one")


def pytest_configure(config: pytest.Config) -> None:
    """Refuse ``--dist loadgroup`` on a pytest whose node ids pytest-xdist cannot tag.

    The local-vLLM tests and the image builds must each stay on one worker (two builds share the
    build context's ``wheels/``; two vLLMs starve 2 cores). pytest-xdist (3.8, the newest) groups
    them by rewriting ``Node._nodeid``; pytest 9.2 keeps the id in ``Node._id``, so there the
    groups are silently split (both CI image builds ran at once and removed each other's wheels).
    """
    if config.getoption("dist", default="no") == "loadgroup" and pytest.version_tuple[:2] >= (9, 2):
        raise pytest.UsageError(
            f"pytest {pytest.__version__} ignores xdist_group under --dist loadgroup (pytest-xdist "
            "rewrites a node id attribute pytest 9.2 no longer reads): install the pytest pyproject.toml "
            "pins with `make install`"
        )


@pytest.fixture(scope="session")
def nats_server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[ManagedServer]:
    with managed_nats(tmp_path_factory.mktemp("nats"), request.config.getoption("--nats-url")) as server:
        yield server


@pytest.fixture(scope="session")
def redis_server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[ManagedServer]:
    with managed_redis(tmp_path_factory.mktemp("redis"), request.config.getoption("--redis-url")) as server:
        yield server


@pytest.fixture
def own_nats_server(tmp_path: Path) -> Iterator[ManagedServer]:
    """A NATS server for one test alone (for tests that kill and restart it)."""
    with managed_nats(tmp_path, None) as server:
        yield server


@pytest.fixture
def own_redis_server(tmp_path: Path) -> Iterator[ManagedServer]:
    """A Redis server for one test alone (for tests that kill and restart it)."""
    with managed_redis(tmp_path, None) as server:
        yield server


async def _delete_streams(nc: NATS) -> None:
    js = nc.jetstream()
    for name in [s.config.name for s in await js.streams_info()]:
        if name:
            await js.delete_stream(name)


@pytest.fixture
async def nc(nats_server: ManagedServer) -> AsyncIterator[NATS]:
    """A NATS connection to the session server, with every stream deleted before the test."""
    client = await nats.connect(nats_server.url)
    await _delete_streams(client)
    try:
        yield client
    finally:
        await client.drain()


@pytest.fixture
async def redis_client(redis_server: ManagedServer) -> AsyncIterator[aioredis.Redis]:
    """A Redis client to the session server, flushed before the test."""
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    await client.flushall()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture(scope="session")
def span_exporter() -> Iterator[InMemorySpanExporter]:
    """Spans of this test process, in memory (one SDK provider per process, set by whoever comes first)."""
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter


@pytest.fixture
def spans(span_exporter: InMemorySpanExporter) -> InMemorySpanExporter:
    span_exporter.clear()
    return span_exporter
