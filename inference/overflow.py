"""The overflow endpoint: a managed OpenAI-compatible API that takes the pool's requests in a burst.

The operator declares it (``CREWS_LLM_OVERFLOW_URL``, ``_MODEL``, the name of
the environment variable with its API key in ``_API_KEY_ENV``, its price in
``CREWS_LLM_PRICES`` under its model name). ``PoolLoad`` reads every pool
endpoint's Prometheus ``/metrics`` every few seconds and sums vLLM's
``vllm:num_requests_waiting``; ``OverflowSwitch`` turns on when that sum
reaches ``start_waiting`` and off when it falls to ``stop_waiting`` or below
(in between it keeps its state, so it does not flap at one threshold). While
it is on, new requests for the pool's model go to the overflow endpoint;
requests in flight finish where they are. So a spike is served by the managed
API instead of a queue, and GPU nodes are not bought for spikes.

An endpoint whose ``/metrics`` cannot be read counts for nothing; when no
endpoint answers, the switch keeps its state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families

log = logging.getLogger(__name__)

WAITING_METRIC = "vllm:num_requests_waiting"


def waiting_requests(text: str) -> float:
    """The sum of every ``vllm:num_requests_waiting`` sample in a Prometheus text exposition."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == WAITING_METRIC:
                total += sample.value
    return total


def metrics_url(base_url: str) -> str:
    """Where an OpenAI base URL's server exposes Prometheus metrics (vLLM: ``/metrics`` at the root)."""
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}/metrics"


class OverflowSwitch:
    """On at ``start_waiting`` waiting requests or more, off at ``stop_waiting`` or fewer."""

    def __init__(self, start_waiting: float, stop_waiting: float) -> None:
        if stop_waiting >= start_waiting:
            raise ValueError(
                f"the overflow's stop threshold ({stop_waiting}) must be below its start threshold "
                f"({start_waiting}): set CREWS_LLM_OVERFLOW_STOP_WAITING lower"
            )
        self.start_waiting = start_waiting
        self.stop_waiting = stop_waiting
        self.active = False

    def update(self, waiting: float) -> bool:
        """Take the pool's current waiting requests; returns whether the switch changed."""
        before = self.active
        if waiting >= self.start_waiting:
            self.active = True
        elif waiting <= self.stop_waiting:
            self.active = False
        return self.active != before


class PoolLoad:
    """Polls the pool's ``/metrics`` every ``interval_s`` and feeds the waiting requests to a switch."""

    def __init__(
        self,
        switch: OverflowSwitch,
        urls: Callable[[], Sequence[str]],
        *,
        interval_s: float = 2.0,
        timeout_s: float = 2.0,
        api_key: str = "",
    ) -> None:
        self.switch = switch
        self.waiting: float | None = None
        """The pool's waiting requests at the last poll that reached an endpoint."""
        self.polls = 0
        self._urls = urls
        self._interval_s = interval_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        self._http = httpx.AsyncClient(timeout=timeout_s, headers=headers)
        self._polled = asyncio.Condition()

    async def poll(self) -> float | None:
        """Read every endpoint's waiting requests once and update the switch; returns their sum."""
        urls = list(self._urls())
        counts = await asyncio.gather(*(self._waiting(url) for url in urls))
        answered = [count for count in counts if count is not None]
        async with self._polled:
            self.polls += 1
            if answered:
                self.waiting = sum(answered)
                if self.switch.update(self.waiting):
                    log.warning(
                        "LLM overflow %s: %s requests wait in the pool (on at %s, off at %s)",
                        "on" if self.switch.active else "off",
                        self.waiting,
                        self.switch.start_waiting,
                        self.switch.stop_waiting,
                    )
            elif urls:
                log.warning("no LLM pool endpoint answered /metrics; the overflow stays %s", self._state())
            self._polled.notify_all()
            return self.waiting if answered else None

    async def run(self) -> None:
        """Poll every ``interval_s`` until cancelled."""
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.poll()
            except Exception:
                log.exception("polling the LLM pool's /metrics failed; trying again")

    async def wait_for(self, predicate: Callable[[PoolLoad], bool]) -> None:
        """Wait until a poll leaves this satisfying ``predicate``."""
        async with self._polled:
            await self._polled.wait_for(lambda: predicate(self))

    async def aclose(self) -> None:
        await self._http.aclose()

    def _state(self) -> str:
        return "on" if self.switch.active else "off"

    async def _waiting(self, base_url: str) -> float | None:
        url = metrics_url(base_url)
        try:
            response = await self._http.get(url)
            response.raise_for_status()
            return waiting_requests(response.text)
        except (httpx.HTTPError, ValueError) as exc:
            log.debug("cannot read %s: %s", url, exc)
            return None
