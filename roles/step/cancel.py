"""Stopping a step when its job stops (cancelled, or failed because of another step).

The job's state hash (``keys.state``, field ``status``) is the truth, read
before the step starts (after the listening below begins, so no stop falls
between the two), between LLM calls (not before the first: the start's read
is just as fresh, and a stop since is signalled) and as the result is
recorded (``roles.step.results``).
While the step runs, the worker also listens to the job's signals
(``crews.signals.<job>``, core NATS: the job-level statuses, state only) for the
status the coordinator publishes (task id = job id): a ``CANCELED`` or ``FAILED`` there interrupts
the LLM call or tool in flight, so a long generation does not run on. A worker's steps hear
them through the process's one subscription (``roles.step.signals.JobSignals``); a watch
without one subscribes for itself. A call to the role's A2A agent has no coordinator: its
cancel is announced on the role's own events subject (``announced_on``, ``roles.a2a.agent.stop_call``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from a2a.types import StreamResponse
from google.protobuf.json_format import ParseError
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from bus import subjects
from bus.contracts.codec import decode
from bus.contracts.events import stops_job
from bus.contracts.states import STOPPED
from bus.contracts.step import StepWork
from roles.errors import StepCancelled

if TYPE_CHECKING:
    from bus.redis_client import RedisClient
    from roles.step.signals import JobSignals

T = TypeVar("T")


class CancelWatch:
    """Tells a step that its job stopped: on demand (``check``) and while it runs (``run``)."""

    def __init__(
        self,
        nc: NATS,
        client: RedisClient,
        work: StepWork,
        *,
        announced_on: str | None = None,
        signals: JobSignals | None = None,
    ) -> None:
        self._nc, self._redis, self.work = nc, client, work
        self._subject = announced_on or subjects.job_signals_subject(work.job)
        self._signals = signals if announced_on is None else None  # the process's, for the job's signals
        self._stopped = False  # a stop was signalled while listening
        self._running: asyncio.Future[Any] | None = None  # what ``run`` runs, interrupted by a stop
        self._listening = False
        self._seen = False  # the status was read while listening
        self._fresh = False  # ... and no check has used that read yet

    @asynccontextmanager
    async def listening(self) -> AsyncIterator[CancelWatch]:
        """Listen for the job's stop from here on; a status read inside counts as ``check``'s."""
        if self._signals is not None:
            await self._signals.ready()
            with self._signals.watching(self.work.job, self._on_signal):
                async with self._listen():
                    yield self
            return

        async def on_event(msg: Msg) -> None:
            self._on_signal(msg.data)

        sub = await self._nc.subscribe(self._subject, cb=on_event)
        try:
            async with self._listen():
                yield self
        finally:
            await sub.unsubscribe()

    @asynccontextmanager
    async def _listen(self) -> AsyncIterator[None]:
        self._listening = True
        try:
            yield
        finally:
            self._listening = False

    def _on_signal(self, data: bytes) -> None:
        if _job_stopped(data, self.work.job):
            self._stopped = True
            if self._running is not None:
                self._running.cancel()

    def saw(self, status: str | None) -> None:
        """``status`` was read just now (inside ``listening``); ``StepCancelled`` if the job stopped.

        The next ``check`` uses this read instead of its own, unless a stop was signalled since.
        """
        self._seen = self._seen or self._listening
        self._fresh = self._listening
        _judge(self.work.job, status)

    async def status(self) -> str | None:
        status: str | None = await self._redis.hget(self.work.keys.state, "status")
        return status

    async def check(self) -> None:
        """``StepCancelled`` when the job is no longer running."""
        if self._fresh and not self._stopped:
            self._fresh = False
            return
        self._fresh = False
        _judge(self.work.job, await self.status())

    async def run(self, step: Callable[[], Awaitable[T]]) -> T:
        """Run ``step()``; interrupt it with ``StepCancelled`` as soon as the job's stop is announced."""
        if not self._listening:
            async with self.listening():
                return await self.run(step)
        if not self._seen:
            self.saw(await self.status())  # after subscribing: a stop announced before now is in Redis
        if self._stopped:
            raise StepCancelled(self.work.job, await self.status() or "stopped")
        running: asyncio.Future[T] = asyncio.ensure_future(step())
        self._running = running  # what a stop signalled now cancels (``_on_signal``)
        try:
            return await running  # cancelling the caller cancels ``running`` too
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not running.cancelled() or (current is not None and current.cancelling()):
                raise  # the caller was cancelled (a deadline, a shutdown), not the step by a stop
            raise StepCancelled(self.work.job, await self.status() or "stopped") from None
        finally:
            self._running = None


def _judge(job: str, status: str | None) -> None:
    if status in STOPPED:
        raise StepCancelled(job, status or "")


def _job_stopped(data: bytes, job: str) -> bool:
    try:
        event = decode(data, StreamResponse)
    except ParseError:
        return False
    return event.HasField("status_update") and stops_job(event.status_update, job)
