"""A step's A2A events on ``crews.events.<job>.<crew>.<role>``, under ids that make every repeat a no-op.

| event | A2A type | event id |
|---|---|---|
| started (each delivery) | status ``WORKING``, metadata step, role, attempt | ``<task>:working:<attempt>`` |
| the output | artifact ``<task>.output`` named after the step: text, or data with an output schema | ``<task>:artifact`` |
| done | status ``COMPLETED`` | ``<task>:completed`` |
| cannot succeed | status ``FAILED``, the reason as a text part of the status message | ``<task>:failed`` |
| job cancelled | status ``CANCELED`` | ``<task>:canceled`` |

``<task>`` is ``StepWork.task_id`` (``<job>.<step>``), the A2A task id; the
job is the A2A context id. JetStream drops an event whose id it has seen, so a
redelivered step that replays its stored result publishes nothing twice.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from a2a.types import Part, TaskArtifactUpdateEvent, TaskState, TaskStatusUpdateEvent
from google.protobuf import json_format
from nats.js import JetStreamContext

from bus.contracts.approvals import ApprovalRecord
from bus.contracts.events import artifact_update, status_update
from bus.contracts.step import StepWork
from bus.jetstream.events import publish_event
from roles.step.results import StepResult


class StepEvents:
    """Publishes the events of one step."""

    def __init__(self, js: JetStreamContext, work: StepWork, worker: str) -> None:
        self._js = js
        self.work = work
        self.worker = worker
        self._sending: asyncio.Future[None] | None = None  # WORKING, on its way while the step runs

    @property
    def task_id(self) -> str:
        return self.work.task_id

    async def working(self, attempt: int) -> None:
        event = self._status(TaskState.TASK_STATE_WORKING, attempt=attempt)
        await self._publish(event, f"{self.task_id}:working:{attempt}")

    def start_working(self, attempt: int) -> None:
        """``WORKING`` without waiting for its ack: the step runs meanwhile, and this object's next event
        (or ``settled``) waits for it first, so the stream keeps the order and a failed publish is raised."""
        event = self._status(TaskState.TASK_STATE_WORKING, attempt=attempt)
        self._sending = asyncio.ensure_future(self._send(event, f"{self.task_id}:working:{attempt}"))

    async def settled(self) -> None:
        """Wait for an event still on its way (``start_working``)."""
        sending, self._sending = self._sending, None
        if sending is not None:
            await sending

    async def result(self, result: StepResult) -> None:
        """The artifact, then ``COMPLETED``: both sent before either ack is awaited (one wait, not two).

        One connection delivers them in the order sent, so the stream stores the artifact first; only a
        retried artifact (its ack lost) may land after ``COMPLETED``, which no reader depends on (the
        coordinator reads the result from Redis; followers read a job until its own end).
        """
        await self.settled()
        await asyncio.gather(
            self._send(self._artifact(result), f"{self.task_id}:artifact"),
            self._send(self._status(TaskState.TASK_STATE_COMPLETED), f"{self.task_id}:completed"),
        )

    async def failed(self, reason: str, *, attempt: int | None = None) -> None:
        event = self._status(TaskState.TASK_STATE_FAILED, reason=reason, attempt=attempt)
        await self._publish(event, f"{self.task_id}:failed")

    async def input_required(self, record: ApprovalRecord) -> None:
        """The step waits for a person to approve a tool call (A2A ``input-required``)."""
        arguments = json.dumps(record.arguments, ensure_ascii=False, sort_keys=True)
        reason = (
            f"approval needed: {record.tool}({arguments[:500]}); "
            f"crews approve {self.work.job} {record.id} (or deny), or "
            f'POST /jobs/{self.work.job}/approvals/{record.id} with {{"approve": true}} or false'
        )
        event = self._status(TaskState.TASK_STATE_INPUT_REQUIRED, reason=reason)
        event.metadata.update(
            {
                "approval": record.id,
                "tool": record.tool,
                "arguments": record.arguments,
                "arguments_sha256": record.arguments_sha256,
                "call_id": record.call_id,
            }
        )
        await self._publish(event, f"{self.task_id}:approval:{record.id}")

    async def canceled(self, reason: str) -> None:
        await self._publish(
            self._status(TaskState.TASK_STATE_CANCELED, reason=reason), f"{self.task_id}:canceled"
        )

    def _metadata(self, **extra: Any) -> dict[str, Any]:
        fields = {"step": self.work.step, "role": self.work.role, "worker": self.worker, **extra}
        return {key: value for key, value in fields.items() if value is not None}

    def _status(
        self, state: TaskState, *, reason: str | None = None, attempt: int | None = None
    ) -> TaskStatusUpdateEvent:
        return status_update(self.task_id, self.work.job, state, reason, self._metadata(attempt=attempt))

    def _artifact(self, result: StepResult) -> TaskArtifactUpdateEvent:
        if self.work.output_schema is not None and result.data is not None:
            part = Part(media_type="application/json")
            json_format.ParseDict(result.data, part.data)
        else:
            part = Part(text=result.output, media_type="text/plain")
        return artifact_update(
            self.task_id, self.work.job, part, name=self.work.step, metadata=self._metadata()
        )

    async def _publish(self, event: TaskStatusUpdateEvent | TaskArtifactUpdateEvent, event_id: str) -> None:
        await self.settled()
        await self._send(event, event_id)

    async def _send(self, event: TaskStatusUpdateEvent | TaskArtifactUpdateEvent, event_id: str) -> None:
        await publish_event(self._js, self.work.job, event, event_id, role=(self.work.crew, self.work.role))
