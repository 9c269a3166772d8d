"""Per-principal limits of the API: submits per minute, running jobs, open event streams (429 + Retry-After).

- submits: a counter per principal and minute in Redis (``crews:rate:<principal>:<minute>``),
  shared by every API replica;
- running jobs: the principal's jobs that have not ended (``crews:owner:<principal>:running``);
- open event streams: counted in this API process (each replica allows as many).

A job's timeout is the request's (at most ``CREWS_MAX_JOB_TIMEOUT_S``) or the server's default.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TypeVar

from crews.api.errors import LimitExceeded, TooManyRequests
from crews.api.settings import ApiSettings
from crews.jobs.owners import Principal
from crews.jobs.store import RedisJobStore

RUNNING_RETRY_S = 10
T = TypeVar("T")


def job_timeout(requested: float | None, default: float, ceiling: float) -> float:
    """The job's timeout: the request's if within ``ceiling`` (else 422), or the default (capped)."""
    if requested is None:
        return min(default, ceiling)
    if requested > ceiling:
        raise LimitExceeded(
            f"timeout_s {requested:g} is over this server's limit of {ceiling:g} s (CREWS_MAX_JOB_TIMEOUT_S): "
            "ask for less"
        )
    return requested


@dataclass
class StreamTicket:
    principal: str
    open: bool = True


class Limiter:
    """Admits submits and event streams of each principal within the API's limits."""

    def __init__(self, store: RedisJobStore, settings: ApiSettings) -> None:
        self.store = store
        self.settings = settings
        self.streams: Counter[str] = Counter()

    async def admit_submit(self, caller: Principal) -> None:
        """Count one submit of ``caller``; 429 when over its rate or its running jobs."""
        now = time.time()
        minute = int(now // 60)
        key = f"crews:rate:{caller.name}:{minute}"
        async with self.store.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, 120)
            count, _ = await pipe.execute()
        limit = self.settings.api_submits_per_minute
        if int(count) > limit:
            raise TooManyRequests(
                f"{caller.name!r} has submitted {limit} jobs this minute, the most allowed "
                "(CREWS_API_SUBMITS_PER_MINUTE): wait and submit again",
                retry_after_s=int(60 - now % 60) + 1,
            )
        running = await self.store.running_jobs(caller.name)
        if running >= self.settings.api_running_jobs:
            raise TooManyRequests(
                f"{caller.name!r} has {running} jobs running, the most allowed (CREWS_API_RUNNING_JOBS): "
                "wait for one to end or cancel one",
                retry_after_s=RUNNING_RETRY_S,
            )

    def open_stream(self, caller: Principal) -> StreamTicket:
        """Hold one event stream for ``caller``; 429 when it holds the most allowed on this API process."""
        if self.streams[caller.name] >= self.settings.api_streams:
            raise TooManyRequests(
                f"{caller.name!r} has {self.streams[caller.name]} event streams open on this server, the most "
                "allowed (CREWS_API_STREAMS): close one first",
                retry_after_s=5,
            )
        self.streams[caller.name] += 1
        return StreamTicket(caller.name)

    def close_stream(self, ticket: StreamTicket) -> None:
        if ticket.open:
            ticket.open = False
            self.streams[ticket.principal] -= 1

    async def held(self, ticket: StreamTicket, stream: AsyncIterator[T]) -> AsyncIterator[T]:
        """``stream``, giving the ticket back when it ends or the client goes away."""
        try:
            async for item in stream:
                yield item
        finally:
            self.close_stream(ticket)
