"""One subscription to every job's signals for a worker process, shared by the steps it runs.

A step listens to its job's signals (``crews.signals.<job>``, ``bus.contracts.events.signal_of``)
while it runs: a stop interrupts it (``roles.step.cancel``). Subscribing and unsubscribing per
step cost two protocol messages and nats-py's two tasks of a callback subscription each time;
instead a worker subscribes to ``crews.signals.*`` once (the subject its NATS user may read,
docs/helm.md), flushed before the first step starts, and hands each signal to the steps of its
job. Signals are rare (a job stopping, an approval decided), so the others' cost nothing.

nats-py subscribes again after a reconnect, as it does a step's own subscription; a signal
published while disconnected is missed either way, which is why a step reads the job's status
from Redis at its start, between LLM calls and with its result.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from bus import subjects

SignalCallback = Callable[[bytes], None]
"""Called with a signal's payload, on the event loop, for each signal of the job it watches."""


class JobSignals:
    """``crews.signals.*`` for one process: ``watching(job, callback)`` while a step of ``job`` runs."""

    def __init__(self, nc: NATS) -> None:
        self._nc = nc
        self._watchers: dict[str, set[SignalCallback]] = {}
        self._sub: Subscription | None = None
        self._subscribing: asyncio.Lock | None = None

    async def ready(self) -> None:
        """Subscribed, and the server has the subscription (the first call subscribes and flushes)."""
        if self._sub is not None:
            return
        if self._subscribing is None:
            self._subscribing = asyncio.Lock()
        async with self._subscribing:
            if self._sub is None:
                sub = await self._nc.subscribe(subjects.JOB_SIGNALS, cb=self._on_signal)
                await self._nc.flush()  # a signal published after this returns reaches the watchers
                self._sub = sub

    @contextmanager
    def watching(self, job: str, callback: SignalCallback) -> Iterator[None]:
        """Hand ``job``'s signals to ``callback`` inside the block (after ``ready``)."""
        watchers = self._watchers.setdefault(job, set())
        watchers.add(callback)
        try:
            yield
        finally:
            watchers.discard(callback)
            if not watchers:
                del self._watchers[job]

    async def close(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            await sub.unsubscribe()

    async def _on_signal(self, msg: Msg) -> None:
        job = msg.subject.rpartition(".")[2]  # crews.signals.<job>: no decode for another job's signal
        for callback in list(self._watchers.get(job, ())):
            callback(msg.data)
