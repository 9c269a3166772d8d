"""A job's events as A2A ``StreamResponse``s: one builder for a status update, one for an artifact.

Every status update carries a timestamp; one with a text carries it as the
status message (id ``<task>:<state>``). The job is the A2A context of its
steps' tasks and of its own task (task id = context id = job id).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from a2a.types import (
    Artifact,
    Message,
    Part,
    Role,
    StreamResponse,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
)

EVENT_KIND_HEADER = "Crews-Event"
"""The NATS header that says what an event is, so a consumer can skip what it does not need undecoded."""

EventKind = Literal["step.status", "step.artifact", "job.status", "job.artifact"]
EVENT_KINDS: frozenset[str] = frozenset({"step.status", "step.artifact", "job.status", "job.artifact"})


def event_kind(event: TaskStatusUpdateEvent | TaskArtifactUpdateEvent) -> EventKind:
    """A job's own events have task id = context id = job id; a step's task is ``<job>.<step>``."""
    job_level = event.task_id == event.context_id
    if isinstance(event, TaskStatusUpdateEvent):
        return "job.status" if job_level else "step.status"
    return "job.artifact" if job_level else "step.artifact"


def wrap(event: TaskStatusUpdateEvent | TaskArtifactUpdateEvent) -> StreamResponse:
    if isinstance(event, TaskStatusUpdateEvent):
        return StreamResponse(status_update=event)
    return StreamResponse(artifact_update=event)


def state_name(state: TaskState) -> str:
    """``TASK_STATE_INPUT_REQUIRED`` → ``input_required``."""
    return TaskState.Name(state).removeprefix("TASK_STATE_").lower()


def status_update(
    task_id: str,
    context_id: str,
    state: TaskState,
    text: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> TaskStatusUpdateEvent:
    """A timestamped status update of ``task_id``; ``text`` (if given) is its status message."""
    status = TaskStatus(state=state)
    status.timestamp.GetCurrentTime()
    if text is not None:
        status.message.CopyFrom(
            Message(
                message_id=f"{task_id}:{state_name(state)}",
                context_id=context_id,
                task_id=task_id,
                role=Role.ROLE_AGENT,
                parts=[Part(text=text)],
            )
        )
    event = TaskStatusUpdateEvent(task_id=task_id, context_id=context_id, status=status)
    if metadata:
        event.metadata.update(dict(metadata))
    return event


def artifact_update(
    task_id: str,
    context_id: str,
    part: Part,
    *,
    name: str,
    metadata: Mapping[str, Any] | None = None,
) -> TaskArtifactUpdateEvent:
    """The whole output of ``task_id`` as one artifact ``<task>.output`` (last chunk)."""
    artifact = Artifact(artifact_id=f"{task_id}.output", name=name, parts=[part])
    event = TaskArtifactUpdateEvent(
        task_id=task_id, context_id=context_id, artifact=artifact, last_chunk=True
    )
    if metadata:
        event.metadata.update(dict(metadata))
    return event
