"""A job's events as A2A ``StreamResponse``s: one builder for a status update, one for an artifact.

Every status update carries a timestamp; one with a text carries it as the
status message (id ``<task>:<state>``). The job is the A2A context of its
steps' tasks and of its own task (task id = context id = job id).

A hierarchical manager's decision on a result (``ManagerDecision``) is a
``WORKING`` status update of the job's task whose metadata holds it under
``manager`` (kind ``job.decision``; built by ``decision_update``, read back by
``decision_of``), so A2A clients see it as progress and crews' own views list it.
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
from google.protobuf import json_format
from pydantic import BaseModel, ConfigDict, Field

from bus.contracts.states import STOPPED_TASK_STATES

EVENT_KIND_HEADER = "Crews-Event"
"""The NATS header that says what an event is, so a consumer can skip what it does not need undecoded."""

EventKind = Literal["step.status", "step.artifact", "job.status", "job.artifact", "job.decision"]
EVENT_KINDS: frozenset[str] = frozenset(
    {"step.status", "step.artifact", "job.status", "job.artifact", "job.decision"}
)
DECISION_KEY = "manager"
"""The metadata key of a ``job.decision`` event (a step's ``decision`` key is an approval's)."""

DecisionKind = Literal["accept", "revise", "delegate"]


class ManagerDecision(BaseModel):
    """What a hierarchical crew's manager decided about one result, as the plan applied it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    review: str = Field(description="The manager's review step that decided.")
    step: str = Field(description="The step whose result the manager reviewed.")
    decision: DecisionKind
    member: str = Field(description="Who does the new step (revise: the same member; accept: who did it).")
    feedback: str = Field("", description="revise: what to change; delegate: why the further task.")
    new_step: str | None = Field(None, description="revise: the new attempt; delegate: the further task.")

    def text(self) -> str:
        """One line for people: the job's status message."""
        if self.decision == "accept":
            return f"the manager accepted {self.step} ({self.member})"
        verb = "sent back" if self.decision == "revise" else "delegated a further task after"
        said = f": {self.feedback}" if self.feedback else ""
        return f"the manager {verb} {self.step}, {self.new_step} ({self.member}){said}"


def event_kind(event: TaskStatusUpdateEvent | TaskArtifactUpdateEvent) -> EventKind:
    """A job's own events have task id = context id = job id; a step's task is ``<job>.<step>``."""
    job_level = event.task_id == event.context_id
    if isinstance(event, TaskStatusUpdateEvent):
        if job_level and DECISION_KEY in event.metadata.fields:
            return "job.decision"
        return "job.status" if job_level else "step.status"
    return "job.artifact" if job_level else "step.artifact"


def decision_update(job: str, decision: ManagerDecision) -> TaskStatusUpdateEvent:
    """The job's ``WORKING`` update that tells one manager decision (event id: ``decision_event_id``)."""
    event = status_update(job, job, TaskState.TASK_STATE_WORKING, decision.text())
    event.status.message.message_id = decision_event_id(job, decision.review)
    event.metadata.update({DECISION_KEY: decision.model_dump(mode="json")})
    return event


def decision_event_id(job: str, review: str) -> str:
    """One event per review step: a repeat (a coordinator that crashed and did it again) is a no-op."""
    return f"{job}:decision:{review}"


def decision_of(event: TaskStatusUpdateEvent) -> ManagerDecision | None:
    """The manager's decision an event tells (None: the event is not a ``job.decision``)."""
    if DECISION_KEY not in event.metadata.fields:
        return None
    raw = json_format.MessageToDict(event.metadata).get(DECISION_KEY)
    return ManagerDecision.model_validate(raw)


def signal_of(event: TaskStatusUpdateEvent | TaskArtifactUpdateEvent) -> TaskStatusUpdateEvent | None:
    """The signal (``crews.signals.<job>``) of a status on the job's own subject: task, context and state.

    Role workers wait on signals, not on the job's events, and only for two things: the job
    stopping (its task ``CANCELED`` or ``FAILED``) and a step's wake-up (an approval decided, a
    status of a step's task: read the decision from Redis). Only those are signalled; a job
    submitted, running or completed wakes no step and gets no signal (``None``). The status text,
    the metadata (an approval's tool arguments, a manager's decision) and artifacts (the job's
    output) stay out.
    """
    if not isinstance(event, TaskStatusUpdateEvent):
        return None
    if event.task_id == event.context_id and not stops_job(event, event.context_id):
        return None
    return TaskStatusUpdateEvent(
        task_id=event.task_id, context_id=event.context_id, status=TaskStatus(state=event.status.state)
    )


def stops_job(update: TaskStatusUpdateEvent, job: str) -> bool:
    """Whether ``update`` is ``job``'s own task stopping (``CANCELED``, ``FAILED``): what stops its steps."""
    return update.task_id == job and update.status.state in STOPPED_TASK_STATES


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
