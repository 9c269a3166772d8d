"""Fixtures for the inference tests: one scripted LLM server per session, pools on it, captured spans."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from inference.client import LLMPool
from inference.settings import InferenceSettings
from inference.testing.script import Script
from inference.testing.server import ScriptedServer


@pytest.fixture(scope="session")
def scripted_session() -> Iterator[ScriptedServer]:
    with ScriptedServer() as server:
        yield server


@pytest.fixture
def scripted(scripted_session: ScriptedServer) -> ScriptedServer:
    """The session's scripted server, reset to the default (echo) script for this test."""
    scripted_session.set_script(Script())
    return scripted_session


def fast_settings(*urls: str, **overrides: Any) -> InferenceSettings:
    """Settings for tests: these URLs (none: the default), quick backoff."""
    values: dict[str, Any] = {
        "llm_backoff_base_s": 0.01,
        "llm_backoff_max_s": 0.05,
        "llm_timeout_s": 10.0,
        "llm_max_retries": 3,
    }
    if urls:
        values["llm_urls"] = list(urls)
    values.update(overrides)
    return InferenceSettings(**values)


@pytest.fixture
async def pool(scripted: ScriptedServer) -> AsyncIterator[LLMPool]:
    async with LLMPool(fast_settings(scripted.url)) as client:
        yield client


@pytest.fixture
async def make_pool() -> AsyncIterator[Callable[..., LLMPool]]:
    """Build pools on any URLs (closed after the test)."""
    pools: list[LLMPool] = []

    def build(*urls: str, **overrides: Any) -> LLMPool:
        pools.append(LLMPool(fast_settings(*urls, **overrides)))
        return pools[-1]

    yield build
    for client in pools:
        await client.aclose()
