"""Run the local stack until asked to stop: start it, scale workers per role, stop everything."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

import nats
from pydantic import BaseModel, ValidationError

from bus.outages import OUTAGES
from crews.jobs.store import RedisJobStore, StackProcess
from crews.local.autoscaler import Autoscaler
from crews.local.settings import StackSettings
from crews.local.stack import LocalStack, Progress
from crews.local.supervisor import Supervisor


class StackInfo(BaseModel):
    """Written to ``<home>/stack.json`` while the stack runs, so ``crews run`` finds it."""

    api_url: str
    nats_url: str
    redis_url: str
    llm_urls: str


def stack_info_path(settings: StackSettings) -> Path:
    return settings.home / "stack.json"


def read_stack_info(settings: StackSettings) -> StackInfo | None:
    path = stack_info_path(settings)
    try:
        return StackInfo.model_validate_json(path.read_text())
    except (OSError, ValidationError):
        return None


async def run_up(
    settings: StackSettings, progress: Progress, stop: asyncio.Event, ready: asyncio.Event
) -> None:
    """Start the stack, set ``ready``, autoscale and supervise until ``stop`` is set, then stop everything.

    ``stop`` also interrupts the start itself (a worker, a server still coming up): every process
    the stack started or is starting is stopped by process group before this returns.
    """
    stack = LocalStack(
        settings.home, api_host=settings.api_host, api_port=settings.api_port, progress=progress
    )
    # The crewai workers import the projects' tools, guardrails, models from here; the API refuses a
    # crew that names another project's code (none declared: any project's).
    stack.env["CREWS_PROJECT_PATHS"] = os.pathsep.join(str(p) for p in settings.project_paths)
    info_path = stack_info_path(settings)
    body = asyncio.create_task(_start_and_run(stack, settings, stop, ready))
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({body, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        info_path.unlink(missing_ok=True)
        procs = stack.begin_stop()  # on this thread: no worker is added after this
        await asyncio.to_thread(stack.stop, procs)
        if not body.done():
            body.cancel()
        await asyncio.wait({body})
    if not body.cancelled() and body.exception() is not None and not stop.is_set():
        body.result()


async def _start_and_run(
    stack: LocalStack, settings: StackSettings, stop: asyncio.Event, ready: asyncio.Event
) -> None:
    await asyncio.to_thread(stack.start_servers, settings.nats_port, settings.redis_port)
    await asyncio.to_thread(stack.start_llm, settings.local_llm, settings.llm_port)
    await asyncio.to_thread(stack.start_services)
    env = stack.env
    info = StackInfo(
        api_url=stack.api_url,
        nats_url=env["CREWS_NATS_URL"],
        redis_url=env["CREWS_REDIS_URL"],
        llm_urls=env["CREWS_LLM_URLS"],
    )
    stack_info_path(settings).write_text(info.model_dump_json())
    supervisor = Supervisor(stack.processes, stack.progress)
    watching = asyncio.create_task(supervisor.run(stop))
    try:
        await _autoscale(stack, info, settings, stop, ready, supervisor)
    finally:
        watching.cancel()


async def _autoscale(
    stack: LocalStack,
    info: StackInfo,
    settings: StackSettings,
    stop: asyncio.Event,
    ready: asyncio.Event,
    supervisor: Supervisor,
) -> None:
    nc = await nats.connect(info.nats_url, max_reconnect_attempts=-1)
    store = RedisJobStore.from_url(info.redis_url)
    scaler = Autoscaler(nc.jetstream(), stack.start_worker, stack.stop_worker, settings.scale_cooldown_s)

    async def track_crews() -> None:
        for name in await store.list_crews():
            with contextlib.suppress(ValidationError):
                spec = await store.get_crew(name)
                stack.note_engines(spec)
                scaler.track(spec)

    async def publish_counts(counts: dict[str, int]) -> None:
        await store.set_worker_counts(counts)
        await store.set_stack_processes(stack_processes(stack, supervisor))
        ready.set()

    try:
        await scaler.run(settings.scale_poll_s, stop, track_crews, publish_counts)
    finally:
        with contextlib.suppress(*OUTAGES):
            await store.set_worker_counts({})
            await store.set_stack_processes({})
        await store.aclose()
        await nc.close()


def stack_processes(stack: LocalStack, supervisor: Supervisor) -> dict[str, StackProcess]:
    """The stack's processes by name (a role's workers under one name), with their restarts."""
    found: dict[str, StackProcess] = {}
    for proc in stack.processes():
        entry = found.setdefault(proc.name, StackProcess(name=proc.name))
        if proc.pid is not None and proc.running:
            entry.pids.append(proc.pid)
        entry.restarts = supervisor.restarts.get(proc.name, 0)
    return found


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
