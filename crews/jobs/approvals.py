"""A person's side of tool approvals: list what waits, approve or deny it.

Workers record each call that needs approval in the job's approvals hash
(``bus.contracts.approvals.ApprovalRecord``, written by ``roles.step.approvals``)
and wait. Deciding sets the record's status once (a second decision is
refused), with who decided, when and why, in a Redis transaction (WATCH): the
record is rewritten from the typed model, so its arguments and their digest
are exactly what the worker wrote. A decision may name the digest the person
saw (``arguments_sha256``); it must match. The step's WORKING status with the
decision is then published, which wakes the waiting worker, and set in the
job's state (under the event's stream sequence, as the coordinator sets the
states its role events carry: it does not read the job's own subject).
"""

from __future__ import annotations

import time

from a2a.types import TaskState
from nats.js import JetStreamContext
from redis.exceptions import WatchError

from bus.contracts.approvals import ApprovalRecord
from bus.contracts.step import step_task_id
from bus.jetstream.events import publish_event
from crews.errors import JobError, JobNotFound
from crews.jobs.events import status_event
from crews.jobs.store import RedisJobStore, job_keys

Approval = ApprovalRecord
"""The API shows the record as it is stored: one model, defined in the bus contracts."""


async def list_approvals(store: RedisJobStore, job: str) -> list[ApprovalRecord]:
    await store.get(job)  # JobNotFound for an unknown job
    raw: dict[str, str] = await store.redis.hgetall(job_keys(job).approvals)
    records = [ApprovalRecord.model_validate_json(value) for _, value in sorted(raw.items())]
    return sorted(records, key=lambda record: record.requested_at)


async def decide(
    js: JetStreamContext,
    store: RedisJobStore,
    job: str,
    approval: str,
    approve: bool,
    comment: str = "",
    *,
    decided_by: str = "api-key",
    arguments_sha256: str | None = None,
) -> ApprovalRecord:
    """Approve or deny a waiting tool call; ``JobError`` if it was decided before or the digest differs."""
    state = await store.get(job)
    if state.terminal:
        decided = [a for a in await list_approvals(store, job) if a.id == approval and a.status != "pending"]
        if decided:
            raise JobError(f"approval {approval} was already {decided[0].status} by {decided[0].decided_by}")
        raise JobError(f"job {job} has ended ({state.status}): its tool calls can no longer be approved")
    record = await _set_decision(
        store, job, approval, approve, comment, decided_by=decided_by, arguments_sha256=arguments_sha256
    )
    status = record.status
    task = step_task_id(job, record.step)
    text = f"{record.tool}: {status} by {decided_by}" + (f" ({comment})" if comment else "")
    event = status_event(job, task, TaskState.TASK_STATE_WORKING, text)
    event.metadata.update(
        {
            "approval": record.id,
            "decision": status,
            "step": record.step,
            "role": record.role,
            "tool": record.tool,
            "arguments": record.arguments,
            "arguments_sha256": record.arguments_sha256,
            "decided_by": decided_by,
            "comment": comment,
        }
    )
    seq = await publish_event(js, job, event, f"{task}:approval:{approval}:{status}")
    await store.set_step_state(job, record.step, "working", seq=seq)
    return record


async def _set_decision(
    store: RedisJobStore,
    job: str,
    approval: str,
    approve: bool,
    comment: str,
    *,
    decided_by: str,
    arguments_sha256: str | None,
) -> ApprovalRecord:
    key = job_keys(job).approvals
    async with store.redis.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(key)
                raw = await pipe.hget(key, approval)
                if raw is None:
                    raise JobNotFound(
                        f"job {job} has no approval {approval!r}: GET /jobs/{job}/approvals lists them"
                    )
                record = ApprovalRecord.model_validate_json(raw)
                if record.status != "pending":
                    raise JobError(f"approval {approval} was already {record.status} by {record.decided_by}")
                if arguments_sha256 is not None and arguments_sha256 != record.arguments_sha256:
                    raise JobError(
                        f"approval {approval} is for other arguments than the ones you saw "
                        f"(sha256 {record.arguments_sha256[:12]}…): look at it again before deciding"
                    )
                decided = record.model_copy(
                    update={
                        "status": "approved" if approve else "denied",
                        "decided_by": decided_by,
                        "decided_at": time.time(),
                        "comment": comment,
                    }
                )
                pipe.multi()
                pipe.hset(key, approval, decided.model_dump_json())
                await pipe.execute()
            except WatchError:
                continue
            return decided
