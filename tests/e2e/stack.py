"""A crews stack in separate processes for end-to-end tests: coordinator and role workers.

NATS and Redis come from the session fixtures, the LLM is the scripted server
(or a real model), and every process is a real ``crews`` command started with
the stack's environment and stopped (or SIGKILLed) by the test.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from a2a.types import StreamResponse, TaskState
from google.protobuf import json_format
from nats.js import JetStreamContext

from bus.contracts.states import TERMINAL_TASK_STATES
from bus.jetstream.events import JobEvent, follow_events
from crews.jobs.store import RedisJobStore
from crews.local.servers import READY_TIMEOUT_S, ServerProcess, free_port
from crews.spec.load import load_crew_text
from tests.child_env import child_env

ROOT = Path(__file__).resolve().parents[2]


def stack_ports() -> dict[str, str]:
    """Free ports for a ``crews up`` of a test: its defaults (8080, 4222, 6379, 8000) are one per
    machine, and two stacks of tests running at once raced for them (the API exited on
    "address already in use" and was restarted)."""
    return {f"CREWS_{name}_PORT": str(free_port()) for name in ("API", "NATS", "REDIS", "LLM")}


CREWS = str(Path(sys.executable).with_name("crews"))
TERMINAL_JOB_STATES = TERMINAL_TASK_STATES


@dataclass
class Stack:
    nats_url: str
    redis_url: str
    llm_url: str
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: list[ServerProcess] = field(default_factory=list)
    log_dir: Path | None = (
        None  # each process's whole output in <log_dir>/<n>-<name>.log (else only its tail)
    )
    ready_timeout_s: float = READY_TIMEOUT_S
    _serial: itertools.count[int] = field(default_factory=itertools.count, repr=False)

    def env(self) -> dict[str, str]:
        env = child_env()
        env.update(
            CREWS_NATS_URL=self.nats_url,
            CREWS_REDIS_URL=self.redis_url,
            CREWS_LLM_URLS=self.llm_url,
            CREWS_LLM_MAX_RETRIES="0",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def start(self, *args: str, ready: str, executable: str = CREWS) -> ServerProcess:
        """Start ``crews <args>`` (or ``executable <args>``) and wait for its ready line."""
        return self.start_argv(args[0], [executable, *args], ready=ready)

    def start_argv(self, name: str, argv: list[str], *, ready: str) -> ServerProcess:
        log_file = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log_file = (
                self.log_dir / f"{next(self._serial):03d}-{name.replace('/', '-').replace(' ', '-')}.log"
            )
        proc = ServerProcess(
            name,
            argv,
            ready,
            0,
            env=self.env(),
            cwd=str(ROOT),
            log_file=log_file,
            ready_timeout_s=self.ready_timeout_s,
        )
        self.procs.append(proc)  # before it is ready: stop_all stops a process that failed to start, too
        proc.start()
        return proc

    def ledger_worker(self, crew: str, role: str) -> ServerProcess:
        """A worker with the test-only ``ledger_append`` tool (``tests.chaos.worker``)."""
        target = f"{crew}/{role}"
        argv = [sys.executable, "-m", "tests.chaos.worker", target]
        return self.start_argv(f"ledger worker {target}", argv, ready=f"role {target} ready")

    def coordinator(self) -> ServerProcess:
        return self.start("coordinator", ready="coordinator ready")

    def worker(self, crew: str, role: str, *, executable: str = CREWS) -> ServerProcess:
        """A ``crews role`` worker; ``executable``: another environment's ``crews`` (the CrewAI venv's)."""
        return self.start("role", f"{crew}/{role}", ready=f"role {crew}/{role} ready", executable=executable)

    def stop_all(self) -> None:
        """Stop every process and print its last lines (pytest shows them when a test fails)."""
        for proc in self.procs:
            proc.stop(timeout=10)
            print(f"----- {' '.join(proc.argv[1:])} -----\n{proc.log_tail}")


async def job_events(js: JetStreamContext, job: str, timeout: float = 60.0) -> list[StreamResponse]:
    """Every event of ``job`` up to and including its final job-level status."""
    events: list[StreamResponse] = []

    async def collect(stream: AsyncIterator[JobEvent]) -> None:
        async for item in stream:
            events.append(item.event)
            update = item.event.status_update
            if update.task_id == job and update.status.state in TERMINAL_JOB_STATES:
                return

    stream = follow_events(js, job)
    try:
        await asyncio.wait_for(collect(stream), timeout)
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    return events


async def wait_for_step_state(
    js: JetStreamContext, job: str, step: str, state: TaskState, timeout: float = 30.0
) -> None:
    """Return once ``step`` of ``job`` has published ``state``."""
    stream = follow_events(js, job)

    async def seen() -> None:
        async for item in stream:
            update = item.event.status_update
            if update.task_id == f"{job}.{step}" and update.status.state == state:
                return

    try:
        await asyncio.wait_for(seen(), timeout)
    finally:
        await stream.aclose()  # type: ignore[attr-defined]


async def wait_for_approval(
    js: JetStreamContext, job: str, count: int, timeout: float = 30.0
) -> list[dict[str, Any]]:
    """The metadata of the job's first ``count`` approval requests (input-required events)."""
    seen: list[dict[str, Any]] = []
    stream = follow_events(js, job)

    async def collect() -> None:
        async for item in stream:
            update = item.event.status_update
            if update.status.state == TaskState.TASK_STATE_INPUT_REQUIRED:
                seen.append(json_format.MessageToDict(update.metadata))
                if len(seen) == count:
                    return

    try:
        await asyncio.wait_for(collect(), timeout)
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    return seen


def step_states(events: list[StreamResponse], job: str) -> list[tuple[str, Any]]:
    """(step, state) of every step status event, in order."""
    return [
        (e.status_update.task_id.removeprefix(f"{job}."), e.status_update.status.state)
        for e in events
        if e.HasField("status_update") and e.status_update.task_id != job
    ]


async def register(store: RedisJobStore, text: str, filename: str = "crew.yaml") -> str:
    """Register the crew file ``text`` as the API would; its name."""
    spec = load_crew_text(text, filename)
    await store.save_crew(spec)
    return spec.name
