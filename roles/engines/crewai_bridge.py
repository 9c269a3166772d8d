"""Calls from CrewAI's own (synchronous) loop, on its thread, into the worker's event loop.

CrewAI runs a task synchronously; the crewai engine runs it in a thread and
every LLM call and tool call it makes comes back here: ``Bridge.call`` runs
the coroutine on the worker's loop (where the pool client, Redis and NATS
live) and waits for it. The first error our code raised is kept
(``Bridge.error``): CrewAI catches errors of tools (and may of LLM calls) and
carries on, but the engine raises that error again when CrewAI returns, so a
cancel stays a cancel, a retryable pool error stays retryable, and a step that
cannot succeed fails with its reason. Once the step is stopped (``stop``),
every further call raises ``StepCancelled`` at once, so the thread ends soon.

No CrewAI import here: the bridge is plain asyncio.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any, TypeVar

from roles.errors import StepCancelled

T = TypeVar("T")


class Bridge:
    """Runs coroutines on ``loop`` for code on another thread; keeps the first error."""

    def __init__(self, loop: asyncio.AbstractEventLoop, job: str) -> None:
        self.loop, self.job = loop, job
        self.error: BaseException | None = None
        self._stopped = False
        self._running: set[concurrent.futures.Future[Any]] = set()

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the worker's loop from CrewAI's thread and return its result."""
        if self._stopped:
            coroutine.close()
            raise StepCancelled(self.job, "stopped")
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        self._running.add(future)
        try:
            return future.result()
        except concurrent.futures.CancelledError as exc:
            raise StepCancelled(self.job, "stopped") from exc
        except BaseException as exc:
            self.keep(exc)
            raise
        finally:
            self._running.discard(future)

    def keep(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error

    def raise_kept(self) -> None:
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        """The step is over (cancelled, timed out): end what runs, refuse what comes."""
        self._stopped = True
        for future in list(self._running):
            future.cancel()
