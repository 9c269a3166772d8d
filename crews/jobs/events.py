"""Job-level events: the job as one A2A task (task id = context id = job id) on ``crews.events.<job>``."""

from __future__ import annotations

from a2a.types import (
    Artifact,
    Message,
    Part,
    Role,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
)
from google.protobuf.timestamp_pb2 import Timestamp
from nats.js import JetStreamContext

from bus.contracts.events import publish_event

JOB_STATES: dict[str, TaskState] = {
    "submitted": TaskState.TASK_STATE_SUBMITTED,
    "running": TaskState.TASK_STATE_WORKING,
    "completed": TaskState.TASK_STATE_COMPLETED,
    "failed": TaskState.TASK_STATE_FAILED,
    "cancelled": TaskState.TASK_STATE_CANCELED,
}


def status_event(job: str, task_id: str, state: TaskState, text: str = "") -> TaskStatusUpdateEvent:
    stamp = Timestamp()
    stamp.GetCurrentTime()
    status = TaskStatus(state=state, timestamp=stamp)
    if text:
        message = Message(
            message_id=f"{task_id}:{state}", context_id=job, task_id=task_id, role=Role.ROLE_AGENT
        )
        message.parts.append(Part(text=text))
        status.message.CopyFrom(message)
    return TaskStatusUpdateEvent(task_id=task_id, context_id=job, status=status)


async def publish_job_status(js: JetStreamContext, job: str, status: str, text: str = "") -> None:
    """Publish the job's status once per status (the event id de-duplicates repeats)."""
    await publish_event(js, job, status_event(job, job, JOB_STATES[status], text), f"{job}:job:{status}")


async def publish_job_output(js: JetStreamContext, job: str, output: str) -> None:
    artifact = Artifact(artifact_id=f"{job}.output", name="output")
    artifact.parts.append(Part(text=output))
    event = TaskArtifactUpdateEvent(task_id=job, context_id=job, artifact=artifact, last_chunk=True)
    await publish_event(js, job, event, f"{job}:job:artifact")
