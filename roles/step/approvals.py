"""Human approval for tools marked ``approval: required``: the step pauses until a person decides.

The call is recorded in the job's approvals hash (``<step>:<call id>`` →
``{"tool", "arguments", "status": "pending"}``) and announced as the step's A2A
``input-required`` status. A person approves or denies it over the API, which
sets the status and publishes an event on the job's subject; the waiting
worker wakes on that event and reads the decision from Redis. Meanwhile the
worker keeps the step alive with in-progress acks, and a cancelled or timed
out job stops the wait like any step.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from bus import subjects
from bus.contracts.step import StepWork
from inference.results import ToolCall
from roles.errors import StepFailed

if TYPE_CHECKING:
    from nats.aio.client import Client as NATS

    from bus.redis_client import RedisClient
    from roles.step.events import StepEvents

Decision = Literal["pending", "approved", "denied"]


class ApprovalRecord(BaseModel):
    """One tool call waiting for, or given, a person's decision."""

    step: str
    role: str
    tool: str
    arguments: dict[str, Any]
    status: Decision = "pending"
    comment: str = ""


class ApprovalGate:
    """Asks for approval of a step's tool calls and waits for the answer."""

    def __init__(self, nc: NATS, client: RedisClient, work: StepWork, events: StepEvents) -> None:
        self._nc, self._redis, self.work, self._events = nc, client, work, events

    def needs(self, tool: str) -> bool:
        return tool in self.work.approval_tools

    async def decide(self, call: ToolCall) -> ApprovalRecord:
        """Record the call (once), announce it, and return the decision once a person made it."""
        key = self.work.keys.approvals
        if not key:
            raise StepFailed(f"tool {call.name!r} needs approval, but this step carries no approvals key")
        approval_id = f"{self.work.step}:{call.id}"
        record = ApprovalRecord(
            step=self.work.step, role=self.work.role, tool=call.name, arguments=call.arguments
        )
        woke = asyncio.Event()

        async def on_event(_: object) -> None:
            woke.set()

        sub = await self._nc.subscribe(subjects.events_subject(self.work.job), cb=on_event)
        try:
            await self._redis.hsetnx(key, approval_id, record.model_dump_json())
            await self._events.input_required(approval_id, record.tool, record.arguments)
            while (current := await self._read(key, approval_id)).status == "pending":
                await woke.wait()
                woke.clear()
            return current
        finally:
            await sub.unsubscribe()

    async def _read(self, key: str, approval_id: str) -> ApprovalRecord:
        raw: str | None = await self._redis.hget(key, approval_id)
        if raw is None:
            raise StepFailed(f"approval {approval_id} vanished from {key} (the job's keys expired?)")
        return ApprovalRecord.model_validate_json(raw)


def denied_output(record: ApprovalRecord) -> str:
    """What the model reads when a person said no: data, not an error to retry."""
    return json.dumps(
        {"denied": record.tool, "by": "a person", "comment": record.comment, "note": "do not call it again"}
    )
