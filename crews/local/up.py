"""Run the local stack until asked to stop: start it, scale workers per role, stop everything."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import nats
from pydantic import BaseModel, ValidationError

from crews.jobs.store import RedisJobStore
from crews.local.autoscaler import Autoscaler
from crews.local.settings import StackSettings
from crews.local.stack import LocalStack, Progress


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
    """Start the stack, set ``ready``, autoscale until ``stop`` is set, then stop everything."""
    stack = LocalStack(
        settings.home, api_host=settings.api_host, api_port=settings.api_port, progress=progress
    )
    info_path = stack_info_path(settings)
    try:
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
        info_path.write_text(info.model_dump_json())
        await _autoscale(stack, info, settings, stop, ready)
    finally:
        info_path.unlink(missing_ok=True)
        await asyncio.to_thread(stack.stop)


async def _autoscale(
    stack: LocalStack, info: StackInfo, settings: StackSettings, stop: asyncio.Event, ready: asyncio.Event
) -> None:
    nc = await nats.connect(info.nats_url, max_reconnect_attempts=-1)
    store = RedisJobStore.from_url(info.redis_url)
    scaler = Autoscaler(nc.jetstream(), stack.start_worker, stack.stop_worker, settings.scale_cooldown_s)

    async def track_crews() -> None:
        for name in await store.list_crews():
            with contextlib.suppress(ValidationError):
                scaler.track(await store.get_crew(name))

    async def publish_counts(counts: dict[str, int]) -> None:
        await store.set_worker_counts(counts)
        ready.set()

    try:
        await scaler.run(settings.scale_poll_s, stop, track_crews, publish_counts)
    finally:
        await store.set_worker_counts({})
        await store.aclose()
        await nc.close()


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
