"""A job as an A2A task: the ``Task`` a crew's A2A endpoint answers with, and the job's events as its events.

A job is one A2A task whose id is the job id. Its context id is the one the
caller's message carried (kept beside the job in ``crews:{job:<id>}:a2a`` with
that message), else the job id. The task's artifacts are each step's result
(``<job>.<step>.output``, named after the step) and, once the job completed,
its output (``<job>.output``), the same ids the events carry.

The job's events on ``crews.events.<job>.>`` become events of that one task:
job-level ones pass through; a step's status (task ``<job>.<step>``) becomes a
``WORKING`` status of the job whose message says what the step did ("step
write (writer) completed"), with ``step``, ``role`` and ``stepState`` in its
metadata; a step's artifact becomes an artifact of the job.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from a2a.types import (
    Artifact,
    Message,
    Part,
    Role,
    StreamResponse,
    Task,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
)
from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import BaseModel

from bus.contracts.states import JOB_TASK_STATES
from crews.jobs.store import JobRecord, RoleUsage, StepResult

TaskEvent = TaskStatusUpdateEvent | TaskArtifactUpdateEvent


class A2ARecord(BaseModel):
    """What the A2A call that started a job said: its context id and its message (proto JSON)."""

    context_id: str
    message: dict[str, Any] = {}


def a2a_key(job: str) -> str:
    return f"crews:{{job:{job}}}:a2a"


class A2ARecords:
    """The A2A record of each job started over A2A (write-once, kept as long as the job)."""

    def __init__(self, client: aioredis.Redis, ttl_s: int) -> None:
        self._redis = client
        self._ttl_s = ttl_s

    async def save(self, job: str, context_id: str, message: Message) -> None:
        record = A2ARecord(context_id=context_id, message=json_format.MessageToDict(message))
        await self._redis.set(a2a_key(job), record.model_dump_json(), nx=True, ex=self._ttl_s)

    async def get(self, job: str) -> A2ARecord | None:
        raw: str | None = await self._redis.get(a2a_key(job))
        return None if raw is None else A2ARecord.model_validate_json(raw)


def job_task(
    record: JobRecord,
    a2a: A2ARecord | None,
    results: dict[str, StepResult] | None = None,
    usage: dict[str, RoleUsage] | None = None,
) -> Task:
    """The job as an A2A task: status, the caller's message as history, results as artifacts."""
    context_id = a2a.context_id if a2a else record.id
    task = Task(id=record.id, context_id=context_id, status=_status(record, context_id))
    if a2a and a2a.message:
        message = json_format.ParseDict(a2a.message, Message(), ignore_unknown_fields=True)
        message.task_id, message.context_id = record.id, context_id
        task.history.append(message)
    for step, result in _in_plan_order(record, results or {}):
        task.artifacts.append(step_artifact(record.id, step, result))
    if record.status == "completed" and record.output:
        task.artifacts.append(text_artifact(f"{record.id}.output", "output", record.output))
    task.metadata.update({"crew": record.crew, "steps": dict(record.steps)})
    if usage:
        task.metadata.update({"usage": _usage(usage)})
    return task


def _status(record: JobRecord, context_id: str) -> TaskStatus:
    stamp = Timestamp()
    stamp.FromNanoseconds(int((record.finished_at or record.created_at) * 1e9))
    status = TaskStatus(state=JOB_TASK_STATES[record.status], timestamp=stamp)
    if record.reason:
        status.message.CopyFrom(agent_message(record.id, context_id, f"{record.id}:reason", record.reason))
    return status


def _in_plan_order(record: JobRecord, results: dict[str, StepResult]) -> list[tuple[str, StepResult]]:
    order = [step.id for step in record.plan.steps] if record.plan else []
    known = [step for step in order if step in results]
    return [(step, results[step]) for step in [*known, *sorted(set(results) - set(known))]]


def _usage(usage: dict[str, RoleUsage]) -> dict[str, int]:
    return {
        "input_tokens": sum(u.input_tokens for u in usage.values()),
        "output_tokens": sum(u.output_tokens for u in usage.values()),
    }


def agent_message(task_id: str, context_id: str, message_id: str, text: str) -> Message:
    return Message(
        message_id=message_id,
        task_id=task_id,
        context_id=context_id,
        role=Role.ROLE_AGENT,
        parts=[Part(text=text)],
    )


def text_artifact(artifact_id: str, name: str, text: str) -> Artifact:
    return Artifact(artifact_id=artifact_id, name=name, parts=[Part(text=text, media_type="text/plain")])


def step_artifact(job: str, step: str, result: StepResult) -> Artifact:
    """A step's result as the artifact its ``COMPLETED`` event carried: JSON data, or text."""
    if result.data is None:
        return text_artifact(f"{job}.{step}.output", step, result.output)
    part = Part(media_type="application/json")
    json_format.ParseDict(result.data, part.data)
    return Artifact(artifact_id=f"{job}.{step}.output", name=step, parts=[part])


def task_event(job: str, context_id: str, event: StreamResponse) -> TaskEvent | None:
    """One event of the job's stream as an event of the job's task (None: nothing to tell)."""
    if event.HasField("artifact_update"):
        artifact = TaskArtifactUpdateEvent()
        artifact.CopyFrom(event.artifact_update)
        artifact.task_id, artifact.context_id = job, context_id
        return artifact
    if not event.HasField("status_update"):
        return None
    update = event.status_update
    if update.task_id == job:
        own = TaskStatusUpdateEvent()
        own.CopyFrom(update)
        own.context_id = context_id
        if own.status.HasField("message"):
            own.status.message.context_id = context_id
        return own
    return _step_progress(job, context_id, update)


def _step_progress(job: str, context_id: str, update: TaskStatusUpdateEvent) -> TaskStatusUpdateEvent:
    """A step's status as a ``WORKING`` status of the job that says which step did what."""
    step = update.task_id.removeprefix(f"{job}.")
    metadata = json_format.MessageToDict(update.metadata)
    role = str(metadata.get("role", ""))
    state = TaskState.Name(update.status.state)
    said = " ".join(part.text for part in update.status.message.parts if part.text)
    verb = state.removeprefix("TASK_STATE_").lower().replace("working", "started")
    text = f"step {step}{f' ({role})' if role else ''} {verb}{f': {said}' if said else ''}"
    message_id = f"{update.task_id}:{verb}:{metadata.get('attempt', '')}:{update.status.message.message_id}"
    status = TaskStatus(state=TaskState.TASK_STATE_WORKING, timestamp=update.status.timestamp)
    status.message.CopyFrom(agent_message(job, context_id, message_id, text))
    progress = TaskStatusUpdateEvent(task_id=job, context_id=context_id, status=status)
    progress.metadata.update({**metadata, "step": step, "stepState": state})
    return progress
