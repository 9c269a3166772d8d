"""Run the long-lived crews processes (the coordinator here; the API in ``crews.api.app``)."""

from __future__ import annotations

import asyncio
import signal

from bus.connect import connect
from bus.settings import BusSettings
from bus.telemetry import setup_tracing
from crews.coordinator.coordinator import Coordinator
from crews.coordinator.settings import CrewsSettings
from crews.jobs.store import RedisJobStore


async def run_coordinator(settings: CrewsSettings, bus: BusSettings) -> None:
    """Run one coordinator until SIGTERM/SIGINT; prints a ready line once it consumes."""
    shutdown_tracing = setup_tracing("crews-coordinator")
    nc = await connect(bus, "crews-coordinator")
    store = RedisJobStore.from_settings(settings, job_ttl_s=settings.job_ttl_s)
    coordinator = Coordinator(nc.jetstream(), store, settings, bus)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, coordinator.stop)
    ready = asyncio.Event()
    runner = asyncio.create_task(coordinator.run(ready))
    await asyncio.wait({runner, asyncio.ensure_future(ready.wait())}, return_when=asyncio.FIRST_COMPLETED)
    if ready.is_set():
        print("coordinator ready", flush=True)  # noqa: T201 - the process's ready line
    try:
        await runner
    finally:
        await store.aclose()
        await nc.drain()
        shutdown_tracing()
