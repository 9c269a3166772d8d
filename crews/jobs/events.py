"""Job-level events: the job as one A2A task (task id = context id = job id) on ``crews.events.<job>.job``."""

from __future__ import annotations

from a2a.types import (
    Part,
    StreamResponse,
    TaskState,
    TaskStatusUpdateEvent,
)
from nats.js import JetStreamContext

from bus.contracts.events import (
    ManagerDecision,
    artifact_update,
    decision_event_id,
    decision_update,
    status_update,
)
from bus.contracts.states import JOB_TASK_STATES, TERMINAL_TASK_STATES
from bus.jetstream.events import publish_event


def status_event(job: str, task_id: str, state: TaskState, text: str = "") -> TaskStatusUpdateEvent:
    return status_update(task_id, job, state, text or None)


async def publish_job_status(js: JetStreamContext, job: str, status: str, text: str = "") -> None:
    """Publish the job's status once per status (the event id de-duplicates repeats)."""
    await publish_event(js, job, status_event(job, job, JOB_TASK_STATES[status], text), f"{job}:job:{status}")


async def publish_job_output(js: JetStreamContext, job: str, output: str) -> None:
    event = artifact_update(job, job, Part(text=output), name="output")
    await publish_event(js, job, event, f"{job}:job:artifact")


async def publish_decision(js: JetStreamContext, job: str, decision: ManagerDecision) -> None:
    """Publish a hierarchical manager's decision once per review step (the event id de-duplicates)."""
    await publish_event(js, job, decision_update(job, decision), decision_event_id(job, decision.review))


def is_job_end(job: str, event: StreamResponse) -> bool:
    """Whether ``event`` is the job's own final status (not one of its steps')."""
    if not event.HasField("status_update"):
        return False
    update = event.status_update
    return update.task_id == job and update.status.state in TERMINAL_TASK_STATES
