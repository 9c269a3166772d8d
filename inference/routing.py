"""Choosing an endpoint of the LLM pool for each request.

Policy, in order:

1. Skip endpoints that failed in the last ``cooldown_s`` seconds (and the one
   the previous attempt of this request failed on), unless nothing else is left.
2. Job affinity: a job's requests go to the endpoint its first request went to,
   so the server's prefix cache holds the job's growing conversation, as long as
   that endpoint has at most ``affinity_slack`` more requests in flight than the
   least loaded one. Past that, the request spills to the least loaded endpoint
   (the job stays bound to its endpoint for later requests).
3. Otherwise least outstanding requests, ties taken in turn.

The counts are this process's own view (requests it has in flight). The
endpoints can change while requests run (``set_urls``, from DNS discovery): a
removed endpoint keeps its in-flight requests, which finish there, and the jobs
bound to it move on their next request. Not thread-safe: use one router per
event loop, like the client that owns it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from inference.errors import LLMUnavailable


@dataclass(eq=False)
class Endpoint:
    """One OpenAI-compatible server of the pool and this process's traffic to it."""

    url: str
    outstanding: int = 0
    requests: int = 0
    failures: int = 0
    failed_until: float = field(default=0.0, repr=False)
    removed: bool = field(default=False, repr=False)


class Router:
    """Least-outstanding routing with job affinity and a cool-down for failed endpoints."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        affinity_slack: int = 2,
        cooldown_s: float = 5.0,
        max_jobs: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        source: str = "CREWS_LLM_URLS",
    ) -> None:
        self.endpoints = [Endpoint(url.rstrip("/")) for url in dict.fromkeys(urls)]
        self._source = source
        self._affinity_slack = affinity_slack
        self._cooldown_s = cooldown_s
        self._max_jobs = max_jobs
        self._clock = clock
        self._jobs: OrderedDict[str, Endpoint] = OrderedDict()
        self._turn = 0

    def pick(self, job_id: str, *, avoid: Endpoint | None = None) -> Endpoint:
        """The endpoint for the next request of ``job_id`` (``avoid``: where its last attempt failed).

        Raises ``LLMUnavailable`` when the pool has no endpoint (discovery found no server).
        """
        if not self.endpoints:
            raise LLMUnavailable(
                f"the LLM pool has no endpoint: {self._source} resolved to no server; start the pool's "
                "servers (or check the name), or retry the step later"
            )
        candidates = self._candidates(avoid)
        least = min(e.outstanding for e in candidates)
        bound = self._jobs.get(job_id)
        if bound is not None and bound in candidates:
            self._jobs.move_to_end(job_id)
            if bound.outstanding <= least + self._affinity_slack:
                return bound
            return self._least_loaded(candidates, least)
        chosen = self._least_loaded(candidates, least)
        self._bind(job_id, chosen)
        return chosen

    @contextmanager
    def track(self, endpoint: Endpoint) -> Iterator[Endpoint]:
        """Count a request as in flight on ``endpoint`` while the block runs."""
        endpoint.outstanding += 1
        endpoint.requests += 1
        try:
            yield endpoint
        finally:
            endpoint.outstanding -= 1

    def set_urls(self, urls: Sequence[str]) -> tuple[list[Endpoint], list[Endpoint]]:
        """Make ``urls`` the pool: returns the endpoints added and removed.

        Kept endpoints keep their counts and jobs; a removed one is flagged ``removed`` (its
        in-flight requests finish on it) and the jobs bound to it are unbound.
        """
        wanted = list(dict.fromkeys(url.rstrip("/") for url in urls))
        current = {e.url: e for e in self.endpoints}
        added = [Endpoint(url) for url in wanted if url not in current]
        removed = [e for e in self.endpoints if e.url not in wanted]
        if not added and not removed:
            return [], []
        fresh = {e.url: e for e in added}
        self.endpoints = [current.get(url) or fresh[url] for url in wanted]
        for endpoint in removed:
            endpoint.removed = True
        gone = {id(e) for e in removed}
        for job_id in [job for job, e in self._jobs.items() if id(e) in gone]:
            del self._jobs[job_id]
        return added, removed

    def mark_failed(self, endpoint: Endpoint) -> None:
        """Avoid ``endpoint`` for the cool-down (it refused, timed out or answered 5xx/429)."""
        endpoint.failures += 1
        endpoint.failed_until = self._clock() + self._cooldown_s

    def mark_ok(self, endpoint: Endpoint) -> None:
        endpoint.failed_until = 0.0

    def endpoint_of(self, job_id: str) -> Endpoint | None:
        """The endpoint ``job_id`` is bound to, if any."""
        return self._jobs.get(job_id)

    def forget(self, job_id: str) -> None:
        """Drop a finished job's affinity."""
        self._jobs.pop(job_id, None)

    def _candidates(self, avoid: Endpoint | None) -> list[Endpoint]:
        now = self._clock()
        others = [e for e in self.endpoints if e is not avoid] or self.endpoints
        healthy = [e for e in others if e.failed_until <= now]
        return healthy or others

    def _least_loaded(self, candidates: list[Endpoint], least: int) -> Endpoint:
        ties = [e for e in candidates if e.outstanding == least]
        self._turn += 1
        return ties[self._turn % len(ties)]

    def _bind(self, job_id: str, endpoint: Endpoint) -> None:
        self._jobs[job_id] = endpoint
        self._jobs.move_to_end(job_id)
        while len(self._jobs) > self._max_jobs:
            self._jobs.popitem(last=False)
