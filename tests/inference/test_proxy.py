"""The LLM client follows the environment's HTTP proxy, looked up once per endpoint, through a real proxy."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from inference.client import LLMPool
from inference.testing.script import Script
from inference.testing.server import ScriptedServer
from tests.inference.conftest import fast_settings

USER = [{"role": "user", "content": "through the proxy?"}]


@dataclass
class ForwardProxy:
    """A forwarding HTTP proxy: takes absolute-form requests, sends them on, and keeps the URLs it forwarded."""

    url: str = ""
    forwarded: list[str] = field(default_factory=list)


@pytest.fixture
async def proxy() -> AsyncIterator[ForwardProxy]:
    found = ForwardProxy()
    async with aiohttp.ClientSession() as upstream:

        async def forward(request: web.Request) -> web.Response:
            found.forwarded.append(str(request.url))
            headers = {
                k: v for k, v in request.headers.items() if k.lower() not in ("host", "proxy-connection")
            }
            async with upstream.request(
                request.method, request.url, headers=headers, data=await request.read()
            ) as r:
                return web.Response(status=r.status, body=await r.read(), content_type=r.content_type)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", forward)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        found.url = f"http://127.0.0.1:{port}"
        try:
            yield found
        finally:
            await runner.cleanup()


async def test_calls_go_through_the_environments_proxy(
    scripted: ScriptedServer, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    scripted.set_script(
        Script.model_validate(
            {"rules": [{"step": "a", "replies": ["one"]}, {"step": "b", "replies": ["two"]}]}
        )
    )
    async with LLMPool(fast_settings(scripted.url)) as pool:
        first = await pool.chat(USER, job_id="job-p", role="writer", step="a")
        second = await pool.chat(USER, job_id="job-p", role="writer", step="b")

    assert (first.content, second.content) == ("one", "two")
    assert proxy.forwarded == [f"{scripted.url}/chat/completions"] * 2
    assert len(scripted.requests()) == 2


async def test_no_proxy_sends_calls_directly(
    scripted: ScriptedServer, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    async with LLMPool(fast_settings(scripted.url)) as pool:
        result = await pool.chat(USER, job_id="job-d", role="writer", step="a")

    assert result.content
    assert proxy.forwarded == []
    assert len(scripted.requests()) == 1


class CountingExecutor(ThreadPoolExecutor):
    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.submitted = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


async def test_a_call_hands_no_proxy_lookup_to_a_thread(scripted: ScriptedServer) -> None:
    """aiohttp's ``trust_env`` hands two lookups (proxy, ``~/.netrc``) to a thread on every request; the
    client looks the proxy up once, when it is made."""
    executor = CountingExecutor()
    asyncio.get_running_loop().set_default_executor(executor)
    async with LLMPool(fast_settings(scripted.url)) as pool:
        for _ in range(3):
            await pool.chat(USER, job_id="job-t", role="writer", step="a")

    assert len(scripted.requests()) == 3
    assert executor.submitted == 0
