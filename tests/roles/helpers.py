"""Helpers for the role worker tests: in-process workers on real NATS and Redis, steps, their events.

``Workers.run_step`` dispatches a step as the coordinator does (an A2A ``SendMessage``
on the role's subject, under its message id) and returns the step's events up
to its final status, read back from the events stream.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from a2a.types import StreamResponse, TaskState
from google.protobuf import json_format
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from bus import subjects
from bus.contracts.step import RolePrompt, StepKeys, StepWork, request_json
from bus.jetstream.dispatch import dispatch_step, step_msg_id
from bus.jetstream.events import follow_events
from bus.jetstream.streams import ensure_role_consumer, ensure_streams
from bus.jetstream.work_loop import WorkLoop
from bus.settings import BusSettings
from inference.client import LLMPool
from inference.settings import InferenceSettings
from roles.settings import RoleSettings
from roles.tools.registry import ToolRegistry
from roles.worker import RoleWorker

CREW = "demo"
FINAL_STATES = {TaskState.TASK_STATE_COMPLETED, TaskState.TASK_STATE_FAILED, TaskState.TASK_STATE_CANCELED}


def job_keys(job: str) -> StepKeys:
    tag = f"crews:{{job:{job}}}"
    return StepKeys(
        state=f"{tag}:state", results=f"{tag}:results", memory=f"{tag}:memory", usage=f"{tag}:usage"
    )


def new_job() -> str:
    return uuid.uuid4().hex[:12]


def make_work(job: str, step: str, role: str = "writer", **overrides: Any) -> StepWork:
    values: dict[str, Any] = {
        "job": job,
        "crew": CREW,
        "step": step,
        "task": step,
        "role": role,
        "prompt": RolePrompt(role=role.title(), goal=f"Do the {step} well", backstory="You are careful."),
        "description": f"Do the {step}.",
        "expected_output": "A short text.",
        "keys": job_keys(job),
    }
    values.update(overrides)
    return StepWork(**values)


def inference_settings(url: str) -> InferenceSettings:
    """No retries inside the pool (a 500 becomes a nak at once), short backoff hints."""
    return InferenceSettings(
        llm_urls=[url], llm_max_retries=0, llm_backoff_base_s=0.01, llm_backoff_max_s=0.1, llm_timeout_s=10
    )


@dataclass
class Workers:
    """Starts in-process role workers on the test's NATS and Redis; ``stop`` waits for their steps."""

    nc: NATS
    redis: aioredis.Redis
    pool: LLMPool
    bus: BusSettings = field(default_factory=lambda: BusSettings(ack_wait_s=5, max_deliver=3))
    loops: list[tuple[WorkLoop, asyncio.Task[None]]] = field(default_factory=list)

    @property
    def js(self) -> JetStreamContext:
        return self.nc.jetstream()

    async def start(
        self,
        role: str = "writer",
        *,
        tools: ToolRegistry | None = None,
        worker_id: str = "w1",
        **settings_overrides: Any,
    ) -> None:
        await ensure_streams(self.js, self.bus)
        consumer = await ensure_role_consumer(self.js, CREW, role, self.bus)

        settings = RoleSettings(
            redis_url="unused://",
            worker_id=worker_id,
            worker_concurrency=2,
            worker_grace_s=10,
            **settings_overrides,
        )
        worker = RoleWorker(self.nc, self.redis, self.pool, settings, crew=CREW, role=role, tools=tools)
        loop = WorkLoop(
            self.js, subjects.TASKS_STREAM, consumer, worker.handle, on_dead=worker.on_dead, concurrency=2
        )
        task = asyncio.create_task(loop.run())
        await loop.wait_ready()
        self.loops.append((loop, task))

    async def stop(self) -> None:
        """Stop fetching and wait until every step in hand is finished and acked (or given back)."""
        for loop, _ in self.loops:
            loop.stop()
        for _, task in self.loops:
            await task
        self.loops.clear()

    async def dispatch(self, work: StepWork, *, msg_id: str | None = None) -> None:
        await dispatch(self.js, work, msg_id=msg_id)

    async def run_step(self, work: StepWork, *, msg_id: str | None = None) -> list[StreamResponse]:
        return await run_step(self.js, work, msg_id=msg_id)


async def dispatch(js: JetStreamContext, work: StepWork, *, msg_id: str | None = None) -> None:
    """Send ``work`` to its role's queue as the coordinator does (an A2A ``SendMessage``, a stable id)."""
    request = request_json(work)
    await dispatch_step(js, work.crew, work.role, request, msg_id or step_msg_id(work.job, work.step, 1))


async def run_step(
    js: JetStreamContext, work: StepWork, *, msg_id: str | None = None
) -> list[StreamResponse]:
    """Dispatch ``work`` and return its events up to its final status."""
    await dispatch(js, work, msg_id=msg_id)
    return await step_events(js, work)


async def step_events(js: JetStreamContext, work: StepWork, timeout: float = 30.0) -> list[StreamResponse]:
    """The events of ``work``'s task, from the first up to its final status."""
    events: list[StreamResponse] = []
    stream = follow_events(js, work.job)
    try:
        async with asyncio.timeout(timeout):
            async for item in stream:
                event = item.event
                update = event.status_update if event.HasField("status_update") else None
                task_id = update.task_id if update else event.artifact_update.task_id
                if task_id != work.task_id:
                    continue
                events.append(event)
                if update is not None and update.status.state in FINAL_STATES:
                    return events
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    return events


def states(events: list[StreamResponse]) -> list[int]:
    return [e.status_update.status.state for e in events if e.HasField("status_update")]


def reason(event: StreamResponse) -> str:
    return " ".join(part.text for part in event.status_update.status.message.parts)


def metadata(event: StreamResponse) -> dict[str, Any]:
    update = event.status_update if event.HasField("status_update") else event.artifact_update
    return json_format.MessageToDict(update.metadata)
