"""The pool's endpoints as the client sees them: one HTTP client each, kept in step with discovery, and the overflow.

``PoolEndpoints`` owns the ``Router`` and an ``EndpointClient`` per
endpoint (``inference.transport``: base URL, bearer key, timeouts; ``LLMPool`` posts the JSON itself). With ``CREWS_LLM_DISCOVER`` it starts ``Discovery``: endpoints that
appear get a client, endpoints that go away leave the router at once and
have their client closed when their last request in flight has finished.
With ``CREWS_LLM_OVERFLOW_URL`` it starts ``PoolLoad`` on the pool's
``/metrics`` and, while the ``OverflowSwitch`` is on (or the pool has no
endpoint at all), routes requests for the pool's model to the overflow.
``start()`` (the client calls it before its first request) resolves and polls
once, then starts both in the background; ``aclose()`` stops them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from inference.discovery import Discovery, Resolver, resolve
from inference.overflow import OverflowSwitch, PoolLoad
from inference.routing import Endpoint, Router
from inference.settings import InferenceSettings
from inference.transport import EndpointClient, Timeouts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    """Where one attempt goes: the endpoint, its HTTP client, and the model to ask it for."""

    endpoint: Endpoint
    client: EndpointClient
    model: str
    overflow: bool = False


class Overflow:
    """The declared overflow endpoint, its client, and the switch the pool's load drives."""

    def __init__(self, settings: InferenceSettings, timeout: Timeouts, load: PoolLoad) -> None:
        s = settings
        self.endpoint = Endpoint(s.llm_overflow_url.rstrip("/"))
        self.model = s.llm_overflow_model
        self.provider = s.llm_overflow_provider
        self.drop_params = frozenset(s.llm_overflow_drop_params)
        self.load = load
        self.client = EndpointClient(self.endpoint.url, s.overflow_api_key(), timeout)
        self._cooldown_s = s.llm_endpoint_cooldown_s

    @property
    def active(self) -> bool:
        return self.load.switch.active

    def usable(self) -> bool:
        return self.endpoint.failed_until <= time.monotonic()

    def mark_failed(self) -> None:
        self.endpoint.failures += 1
        self.endpoint.failed_until = time.monotonic() + self._cooldown_s


class PoolEndpoints:
    """The router, a client per endpoint, discovery and the overflow, per ``InferenceSettings``."""

    def __init__(self, settings: InferenceSettings, *, resolver: Resolver = resolve) -> None:
        s = self.settings = settings
        self.discovery: Discovery | None = None
        if s.llm_discover:
            self.discovery = Discovery(
                s.llm_discover, self._set_urls, interval_s=s.llm_discover_interval_s, resolver=resolver
            )
        self.source = f"CREWS_LLM_DISCOVER ({s.llm_discover})" if s.llm_discover else "CREWS_LLM_URLS"
        self.router = Router(
            [] if self.discovery else s.llm_urls,
            affinity_slack=s.llm_affinity_slack,
            cooldown_s=s.llm_endpoint_cooldown_s,
            source=self.source,
        )
        self._timeout = Timeouts(connect_s=s.llm_connect_timeout_s, read_s=s.llm_timeout_s)
        self._clients = {e: self._client(e.url) for e in self.router.endpoints}
        self.overflow: Overflow | None = None
        if s.llm_overflow_url:
            switch = OverflowSwitch(s.llm_overflow_start_waiting, s.llm_overflow_stop_waiting)
            load = PoolLoad(
                switch,
                lambda: [e.url for e in self.router.endpoints],
                interval_s=s.llm_metrics_interval_s,
                timeout_s=s.llm_connect_timeout_s,
                api_key=s.llm_api_key.get_secret_value(),
            )
            self.overflow = Overflow(s, self._timeout, load)
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False
        self._starting = asyncio.Lock()

    async def start(self) -> None:
        """Resolve the pool's name and read its /metrics once (as configured), then keep doing so."""
        if self._started:
            return
        async with self._starting:
            if self._started:
                return
            if self.discovery is not None:
                await self.discovery.refresh()
                self._tasks.append(asyncio.create_task(self.discovery.run(), name="llm-discovery"))
            if self.overflow is not None:  # the switch is right from the first request
                await self.overflow.load.poll()
                self._tasks.append(asyncio.create_task(self.overflow.load.run(), name="llm-pool-load"))
            self._started = True

    def route(self, job_id: str, model: str, avoid: Endpoint | None) -> Route:
        """The next attempt's route: the overflow while it is on (for the pool's model), else the router's pick.

        With no endpoint in the pool, the overflow takes every attempt (there is nothing to fail over to).
        Raises ``LLMUnavailable`` when the pool has no endpoint and there is no overflow to use.
        """
        o = self.overflow
        if (
            o is not None
            and model == self.settings.llm_model
            and (not self.router.endpoints or (o.active and o.usable() and avoid is not o.endpoint))
        ):
            return Route(o.endpoint, o.client, o.model, overflow=True)
        endpoint = self.router.pick(job_id, avoid=avoid)
        return Route(endpoint, self._clients[endpoint], model)

    def client_of(self, endpoint: Endpoint) -> EndpointClient:
        """The HTTP client of one of the pool's endpoints."""
        return self._clients[endpoint]

    def mark_failed(self, route: Route) -> None:
        if route.overflow:
            assert self.overflow is not None
            self.overflow.mark_failed()
        else:
            self.router.mark_failed(route.endpoint)

    def mark_ok(self, route: Route) -> None:
        if route.overflow:
            route.endpoint.failed_until = 0.0
        else:
            self.router.mark_ok(route.endpoint)

    async def finished(self, route: Route) -> None:
        """After an attempt: close the client of a removed endpoint once nothing runs on it."""
        endpoint = route.endpoint
        if endpoint.removed and endpoint.outstanding == 0:
            client = self._clients.pop(endpoint, None)
            if client is not None:
                await client.aclose()

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        clients = list(self._clients.values())
        self._clients.clear()
        if self.overflow is not None:
            clients.append(self.overflow.client)
            await self.overflow.load.aclose()
        for client in clients:
            await client.aclose()

    async def _set_urls(self, urls: list[str]) -> None:
        added, removed = self.router.set_urls(urls)
        for endpoint in added:
            self._clients[endpoint] = self._client(endpoint.url)
        for endpoint in removed:
            if endpoint.outstanding == 0:
                client = self._clients.pop(endpoint, None)
                if client is not None:
                    await client.aclose()

    def _client(self, url: str) -> EndpointClient:
        return EndpointClient(url, self.settings.llm_api_key.get_secret_value(), self._timeout)
