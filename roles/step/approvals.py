"""Human approval of a tool call: the step pauses until a person decides, and runs only the approved call.

The call is recorded (``bus.contracts.approvals.ApprovalRecord``, pending) in
the job's approvals hash under ``<step>:<call id>`` and announced as the step's
A2A ``input-required`` status. A person approves or denies it over the API,
which records who, when and why and publishes an event on the job's subject
and its signal (``crews.signals.<job>``: no tool, no arguments); the waiting
worker wakes on the signal and reads the decision from Redis.

The decision is bound to the tool and the sha256 of its canonical arguments,
and lets one call run: the call that runs under it claims it with its
idempotency key (``used_by``). A call id that comes back with other arguments
(or another tool), or after its approved call ran (a repeat, even with the
same arguments), does not get the old decision; it is recorded and asked for
again under ``<step>:<call id>:<digest>``. A redelivered step that makes the
same call (the same idempotency key) finds its decision and does not ask twice. Meanwhile the worker keeps the step
alive with in-progress acks, and a cancelled or timed out job stops the wait
like any step.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

from redis.exceptions import WatchError

from bus import subjects
from bus.contracts.approvals import ApprovalRecord, pending_record
from bus.contracts.step import StepWork
from roles.errors import StepFailed

if TYPE_CHECKING:
    from nats.aio.client import Client as NATS

    from bus.redis_client import RedisClient
    from roles.step.events import StepEvents

log = logging.getLogger(__name__)


class ApprovalGate:
    """Asks for approval of a step's tool calls and waits for the answer."""

    def __init__(self, nc: NATS, client: RedisClient, work: StepWork, events: StepEvents) -> None:
        self._nc, self._redis, self.work, self._events = nc, client, work, events

    async def decide(self, tool: str, call_id: str, arguments: dict[str, Any], use: str) -> ApprovalRecord:
        """The decision on exactly this call (``use``: its idempotency key): recorded once, announced, waited for.

        An approval it returns is claimed for ``use``: no other call runs under it.
        """
        key = self.work.keys.approvals
        if not key:
            raise StepFailed(f"tool {tool!r} needs approval, but this step carries no approvals key")
        woke = asyncio.Event()

        async def on_event(_: object) -> None:
            woke.set()

        sub = await self._nc.subscribe(subjects.job_signals_subject(self.work.job), cb=on_event)
        try:
            while True:
                record = await self._record(key, tool, call_id, arguments, use)
                if record.status == "pending":
                    await self._events.input_required(record)
                while record.status == "pending":
                    await woke.wait()
                    woke.clear()
                    record = await self._read(key, record.id)
                if not record.binds(tool, arguments):  # the hash was written by someone else than us
                    raise StepFailed(f"approval {record.id} is not for {tool} with these arguments: refusing")
                if record.status != "approved" or await self._claim(key, record.id, use):
                    return record  # (a denial needs no claim: it lets nothing run)
        finally:
            await sub.unsubscribe()

    async def _record(
        self, key: str, tool: str, call_id: str, arguments: dict[str, Any], use: str
    ) -> ApprovalRecord:
        """The record this call waits on: new, or the one a redelivery of the same call left."""
        work = self.work

        def pending(reused_by: str | None) -> ApprovalRecord:
            return pending_record(
                step=work.step,
                role=work.role,
                tool=tool,
                call_id=call_id,
                arguments=arguments,
                reused_by=reused_by,
            )

        record = pending(None)
        if await self._redis.hsetnx(key, record.id, record.model_dump_json()):
            return record
        existing = await self._read(key, record.id)
        if existing.binds(tool, arguments) and existing.used_by in (None, use):
            return existing
        log.warning(
            "step %s of job %s reused call id %r (other arguments, or after its approved call ran): asking again",
            self.work.step,
            self.work.job,
            call_id,
        )
        again = pending(use)
        if await self._redis.hsetnx(key, again.id, again.model_dump_json()):
            return again
        return await self._read(key, again.id)

    async def _claim(self, key: str, approval: str, use: str) -> bool:
        """Mark the approval used by the call ``use`` (once); False when another call used it."""
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.hget(key, approval)
                    if raw is None:
                        raise StepFailed(f"approval {approval} vanished from {key} (the job's keys expired?)")
                    record = ApprovalRecord.model_validate_json(raw)
                    if record.used_by is not None:
                        await pipe.reset()
                        return record.used_by == use
                    pipe.multi()
                    pipe.hset(key, approval, record.model_copy(update={"used_by": use}).model_dump_json())
                    await pipe.execute()
                except WatchError:
                    continue
                return True

    async def _read(self, key: str, approval: str) -> ApprovalRecord:
        raw: str | None = await self._redis.hget(key, approval)
        if raw is None:
            raise StepFailed(f"approval {approval} vanished from {key} (the job's keys expired?)")
        return ApprovalRecord.model_validate_json(raw)


def denied_output(record: ApprovalRecord) -> str:
    """What the model reads when a person said no: data, not an error to retry."""
    return json.dumps(
        {
            "denied": record.tool,
            "by": "a person",
            "comment": record.comment,
            "note": "the call did not run; do not call it again with the same arguments",
        },
        ensure_ascii=False,
    )
