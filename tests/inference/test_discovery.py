"""The pool discovered from a DNS name (``CREWS_LLM_DISCOVER``), over real scripted servers.

What is real: every server is a scripted OpenAI-compatible server over HTTP on its own loopback
address (Linux routes all of 127.0.0.0/8 to the loopback interface), every request, failover
and client close is the pool's own code. The first tests resolve with the real resolver
(``getaddrinfo`` through asyncio) — ``localhost`` here has one address. What is injected: for
pods joining and leaving, a resolver function standing in for ``getaddrinfo`` answers the name
``vllm-pods`` with the test's current list of 127.0.0.x addresses (the machine's DNS cannot be
given a name with several records, and the hosts file is shared).
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest

from inference.client import LLMPool
from inference.discovery import DiscoveryURL, resolve
from inference.errors import LLMUnavailable
from inference.settings import InferenceSettings
from inference.testing.script import Script
from inference.testing.server import ScriptedServer
from tests.inference.conftest import fast_settings

USER: list[dict[str, Any]] = [{"role": "user", "content": "hello pool"}]
NAME = "vllm-pods"


class FakeDNS:
    """The injected resolver: ``vllm-pods`` has the addresses in ``records`` (or raises ``error``)."""

    def __init__(self, *records: str) -> None:
        self.records = list(records)
        self.error: OSError | None = None
        self.asked: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append((host, port))
        if self.error is not None:
            raise self.error
        return list(self.records) if host == NAME else []


class Pods:
    """Scripted servers on 127.0.0.2, 127.0.0.3, … all on one port, like pods behind a headless Service."""

    def __init__(self, stack: AsyncExitStack) -> None:
        self._stack = stack
        self.port = 0
        self.servers: dict[str, ScriptedServer] = {}

    async def start(self, address: str, script: Script | None = None) -> ScriptedServer:
        server = await self._stack.enter_async_context(ScriptedServer(script, host=address, port=self.port))
        self.port = server.port
        self.servers[address] = server
        return server

    def url(self, address: str) -> str:
        return f"http://{address}:{self.port}/v1"


@pytest.fixture
async def pods() -> AsyncIterator[Pods]:
    async with AsyncExitStack() as stack:
        yield Pods(stack)


def discovered(pods: Pods, dns: FakeDNS, **overrides: Any) -> LLMPool:
    settings = fast_settings(
        llm_discover=f"http://{NAME}:{pods.port}/v1", llm_discover_interval_s=0.02, **overrides
    )
    return LLMPool(settings, resolver=dns)


def job() -> str:
    return f"job-{uuid.uuid4().hex[:8]}"


async def until(pool: LLMPool, predicate: Callable[[list[str]], bool]) -> list[str]:
    assert pool.endpoints.discovery is not None
    return await asyncio.wait_for(pool.endpoints.discovery.wait_for(predicate), 10)


async def test_the_system_resolver_finds_localhost_and_no_invented_name() -> None:
    """Real getaddrinfo: localhost has 127.0.0.1; a .invalid name (RFC 6761) has no address."""
    assert "127.0.0.1" in await resolve("localhost", 8000)
    assert await resolve("127.0.0.3", 8000) == ["127.0.0.3"]
    assert await resolve("no-such-pool.invalid", 8000) == []


async def test_a_pool_discovered_with_the_real_resolver() -> None:
    """Nothing injected: CREWS_LLM_DISCOVER names localhost, getaddrinfo resolves it, the pod answers."""
    async with ScriptedServer(Script(default=["from the pod"])) as server:
        settings = fast_settings(llm_discover=f"http://localhost:{server.port}/v1")
        async with LLMPool(settings) as pool:
            result = await pool.chat(USER, job_id=job(), role="r")
            assert [e.url for e in pool.router.endpoints] == [server.url]
    assert (result.content, result.endpoint) == ("from the pod", server.url)


async def test_pods_that_join_share_the_load_and_keep_their_jobs(pods: Pods) -> None:
    slow = Script(latency_s=0.3)
    await pods.start("127.0.0.2", slow)
    await pods.start("127.0.0.3", slow)
    dns = FakeDNS("127.0.0.2")
    async with discovered(pods, dns) as pool:
        assert (await pool.chat(USER, job_id="first", role="r")).endpoint == pods.url("127.0.0.2")

        dns.records = ["127.0.0.2", "127.0.0.3"]
        await until(pool, lambda urls: len(urls) == 2)
        burst = await asyncio.gather(*(pool.chat(USER, job_id=f"j{i}", role="r") for i in range(4)))
        assert Counter(r.endpoint for r in burst) == {pods.url("127.0.0.2"): 2, pods.url("127.0.0.3"): 2}

        # each job stays on the pod its first request went to (the pod's prefix cache)
        later = [await pool.chat(USER, job_id=f"j{i}", role="r") for i in range(4)]
    assert [r.endpoint for r in later] == [r.endpoint for r in burst]
    assert dns.asked[0] == (NAME, pods.port)


async def test_a_pod_that_leaves_finishes_its_requests_and_its_jobs_move(pods: Pods) -> None:
    await pods.start("127.0.0.2")
    leaving = await pods.start("127.0.0.3", Script(default=[{"text": "finished on .3", "latency_s": 2.0}]))
    dns = FakeDNS("127.0.0.3")
    async with discovered(pods, dns) as pool:
        in_flight = asyncio.create_task(pool.chat(USER, job_id="moving", role="r"))
        await leaving.wait_for_requests(1)
        [endpoint] = pool.router.endpoints

        dns.records = ["127.0.0.2"]
        await until(pool, lambda urls: urls == [pods.url("127.0.0.2")])
        assert [e.url for e in pool.router.endpoints] == [pods.url("127.0.0.2")]
        assert not in_flight.done()
        assert (endpoint.removed, endpoint.outstanding) == (True, 1)
        assert pool.router.endpoint_of("moving") is None  # unbound: its next request goes elsewhere

        result = await in_flight
        with pytest.raises(KeyError):  # its client closed once the request finished
            pool.endpoints.client_of(endpoint)
        after = await pool.chat(USER, job_id="moving", role="r")
    assert (result.content, result.endpoint) == ("finished on .3", pods.url("127.0.0.3"))
    assert after.endpoint == pods.url("127.0.0.2")
    assert len(leaving.requests()) == 1


async def test_failover_from_a_dead_pod_that_dns_still_lists(pods: Pods) -> None:
    await pods.start("127.0.0.2")
    dead = await pods.start("127.0.0.3")
    dns = FakeDNS("127.0.0.2", "127.0.0.3")
    async with discovered(pods, dns, llm_endpoint_cooldown_s=60) as pool:
        await until(pool, lambda urls: len(urls) == 2)
        homes = {name: (await pool.chat(USER, job_id=name, role="r")).endpoint for name in ("a", "b")}
        assert set(homes.values()) == {pods.url("127.0.0.2"), pods.url("127.0.0.3")}
        await asyncio.to_thread(dead.stop)  # the pod dies before its address leaves DNS

        results = [await pool.chat(USER, job_id=name, role="r") for name in ("a", "b", "a", "b")]
        by_url = {e.url: e for e in pool.router.endpoints}
    assert {r.endpoint for r in results} == {pods.url("127.0.0.2")}
    assert sum(r.attempts for r in results) == 5  # one failed attempt, then the cool-down avoids it
    assert by_url[pods.url("127.0.0.3")].failures == 1


async def test_no_ready_pod_is_retryable_until_one_appears(pods: Pods) -> None:
    await pods.start("127.0.0.2")
    dns = FakeDNS()
    async with discovered(pods, dns, llm_max_retries=0) as pool:
        with pytest.raises(LLMUnavailable, match="CREWS_LLM_DISCOVER") as caught:
            await pool.chat(USER, job_id=job(), role="r")
        assert caught.value.retryable
        dns.records = ["127.0.0.2"]
        await until(pool, lambda urls: len(urls) == 1)
        result = await pool.chat(USER, job_id=job(), role="r")
    assert result.endpoint == pods.url("127.0.0.2")


async def test_a_dns_outage_keeps_the_last_endpoints(pods: Pods) -> None:
    """Injected: the resolver fails the way getaddrinfo does when the DNS server does not answer."""
    await pods.start("127.0.0.2")
    dns = FakeDNS("127.0.0.2")
    async with discovered(pods, dns) as pool:
        discovery = pool.endpoints.discovery
        assert discovery is not None
        dns.error = socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        seen = discovery.resolutions
        await asyncio.wait_for(discovery.wait_for(lambda _: discovery.resolutions > seen + 1), 10)
        assert discovery.urls == [pods.url("127.0.0.2")]
        result = await pool.chat(USER, job_id=job(), role="r")
    assert result.endpoint == pods.url("127.0.0.2")


def test_discovery_urls() -> None:
    target = DiscoveryURL.parse("http://crews-crews-vllm-pods:8000/v1/")
    assert (target.host, target.port) == ("crews-crews-vllm-pods", 8000)
    assert target.url_for("10.1.2.3") == "http://10.1.2.3:8000/v1"
    assert target.url_for("fd00::7") == "http://[fd00::7]:8000/v1"
    assert DiscoveryURL.parse("https://pool/v1").port == 443


def test_a_discovery_setting_without_a_host_says_what_to_give(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREWS_LLM_DISCOVER", "vllm-pods:8000")
    with pytest.raises(ValueError, match="headless Service's URL"):
        InferenceSettings()
    monkeypatch.setenv("CREWS_LLM_DISCOVER", "http://vllm-pods:8000/v1/")
    monkeypatch.setenv("CREWS_LLM_DISCOVER_INTERVAL_S", "2")
    settings = InferenceSettings()
    assert (settings.llm_discover, settings.llm_discover_interval_s) == ("http://vllm-pods:8000/v1", 2.0)
