"""A role worker process: ``crews role <crew>/<role>`` (or ``python -m roles.main <crew>/<role>``).

It connects to NATS (reconnecting forever) and Redis, makes sure the streams
and the role's durable consumer exist, runs a ``RoleWorker`` on that consumer,
and prints ``role <crew>/<role> ready`` once it is fetching. SIGTERM or SIGINT
stops fetching and lets the steps in hand finish (``CREWS_WORKER_GRACE_S``).

The path to the ready line imports no LLM client and no framework: the
``openai`` SDK behind ``inference.client`` loads in a thread after the ready
line, and a step that arrives before it is loaded waits for it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import redis.asyncio as aioredis

from bus import subjects
from bus.connect import connect
from bus.settings import BusSettings
from bus.streams import ensure_role_consumer, ensure_streams
from bus.telemetry import setup_tracing
from bus.worker import WorkLoop
from inference.settings import InferenceSettings
from roles.settings import RoleSettings
from roles.worker import RoleWorker

if TYPE_CHECKING:
    from inference.client import LLMPool

log = logging.getLogger(__name__)


class LazyLLM:
    """The LLM pool, built in the background (its ``openai`` import is the slow part of a worker's start)."""

    def __init__(self, settings: InferenceSettings) -> None:
        self._settings = settings
        self._task: asyncio.Task[LLMPool] | None = None

    def warm(self) -> None:
        """Start building the pool now, without waiting for it."""
        if self._task is None:
            self._task = asyncio.create_task(self._build())

    async def get(self) -> LLMPool:
        self.warm()
        assert self._task is not None
        return await asyncio.shield(self._task)

    async def aclose(self) -> None:
        if self._task is None:
            return
        if not self._task.done():
            self._task.cancel()
        elif not self._task.cancelled() and self._task.exception() is None:
            await self._task.result().aclose()

    async def _build(self) -> LLMPool:
        pool_class = await asyncio.to_thread(_import_pool_class)
        return pool_class(self._settings)


def _import_pool_class() -> type[LLMPool]:
    from inference.client import LLMPool

    return LLMPool


async def run_role(
    crew: str,
    role: str,
    bus_settings: BusSettings,
    role_settings: RoleSettings,
    inference_settings: InferenceSettings,
    *,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Run one worker of ``crew/role`` until SIGTERM/SIGINT; ``on_ready`` is called once it fetches."""
    nc = await connect(bus_settings, f"role {crew}/{role}")
    client = aioredis.Redis.from_url(role_settings.redis_url, decode_responses=True)
    llm = LazyLLM(inference_settings)
    try:
        js = nc.jetstream()
        await ensure_streams(js, bus_settings)
        consumer = await ensure_role_consumer(js, crew, role, bus_settings)
        worker = RoleWorker(js, client, llm.get, role_settings, crew=crew, role=role)
        loop = WorkLoop(
            js,
            subjects.TASKS_STREAM,
            consumer,
            worker.handle,
            on_dead=worker.on_dead,
            concurrency=role_settings.worker_concurrency,
            grace_s=role_settings.worker_grace_s,
        )
        await _run_until_stopped(loop, on_ready, llm)
    finally:
        await llm.aclose()
        await client.aclose()
        await nc.drain()


async def _run_until_stopped(loop: WorkLoop, on_ready: Callable[[], None] | None, llm: LazyLLM) -> None:
    events = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        events.add_signal_handler(sig, loop.stop)
    runner = asyncio.create_task(loop.run())
    ready = asyncio.ensure_future(loop.wait_ready())
    try:
        await asyncio.wait({runner, ready}, return_when=asyncio.FIRST_COMPLETED)
        if ready.done() and not runner.done():
            if on_ready is not None:
                on_ready()
            llm.warm()
        await runner
    finally:
        ready.cancel()
        for sig in (signal.SIGTERM, signal.SIGINT):
            events.remove_signal_handler(sig)


def main(crew: str, role: str) -> None:
    """Run a worker with settings from the environment (``CREWS_*``), printing its ready line."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    provider = setup_tracing(f"crews-role-{crew}-{role}")

    def ready() -> None:
        sys.stdout.write(f"role {crew}/{role} ready\n")
        sys.stdout.flush()

    try:
        asyncio.run(run_role(crew, role, BusSettings(), RoleSettings(), InferenceSettings(), on_ready=ready))
    finally:
        provider.shutdown()


def parse_target(target: str) -> tuple[str, str]:
    """``<crew>/<role>`` → (crew, role); ``ValueError`` saying what a good one looks like."""
    crew, sep, role = target.partition("/")
    if not sep or not crew or not role:
        raise ValueError(f"{target!r}: give the role as <crew>/<role>, e.g. research/writer")
    subjects.token(crew)
    subjects.token(role)
    return crew, role


def _cli(argv: list[str]) -> None:
    if len(argv) != 1:
        sys.exit("usage: python -m roles.main <crew>/<role>")
    try:
        crew, role = parse_target(argv[0])
    except ValueError as exc:
        sys.exit(str(exc))
    main(crew, role)


if __name__ == "__main__":
    _cli(sys.argv[1:])
