"""A person's side of tool approvals: list what waits, approve or deny it.

Workers record each call to an ``approval: required`` tool in the job's
approvals hash and wait (``roles.step.approvals``). Deciding sets the record's
status once (a second decision is refused) and publishes the step's WORKING
status with the decision, which wakes the waiting worker.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from a2a.types import TaskState
from nats.js import JetStreamContext
from pydantic import BaseModel

from bus.contracts.step import step_task_id
from bus.jetstream.events import publish_event
from crews.errors import JobError, JobNotFound
from crews.jobs.events import status_event
from crews.jobs.store import RedisJobStore, job_keys

# Set the status of a pending approval; 0: no such approval, 1: decided now, 2: decided before.
_DECIDE = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
local record = cjson.decode(raw)
if record['status'] ~= 'pending' then return 2 end
record['status'] = ARGV[2]
record['comment'] = ARGV[3]
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(record))
return 1
"""


class Approval(BaseModel):
    id: str
    step: str
    role: str
    tool: str
    arguments: dict[str, Any]
    status: Literal["pending", "approved", "denied"]
    comment: str = ""


async def list_approvals(store: RedisJobStore, job: str) -> list[Approval]:
    await store.get(job)  # JobNotFound for an unknown job
    raw: dict[str, str] = await store.redis.hgetall(job_keys(job).approvals)
    return [Approval.model_validate({"id": key, **json.loads(value)}) for key, value in sorted(raw.items())]


async def decide(
    js: JetStreamContext, store: RedisJobStore, job: str, approval: str, approve: bool, comment: str = ""
) -> Approval:
    """Approve or deny a waiting tool call; ``JobError`` if it was already decided."""
    record = await store.get(job)
    if record.terminal:
        raise JobError(f"job {job} has ended ({record.status}): its tool calls can no longer be approved")
    status = "approved" if approve else "denied"
    script = store.redis.register_script(_DECIDE)
    outcome = await script(keys=[job_keys(job).approvals], args=[approval, status, comment])
    if outcome == 0:
        raise JobNotFound(f"job {job} has no approval {approval!r}: GET /jobs/{job}/approvals lists them")
    current = next(a for a in await list_approvals(store, job) if a.id == approval)
    if outcome == 2:
        raise JobError(f"approval {approval} was already {current.status}")
    task = step_task_id(job, current.step)
    event = status_event(job, task, TaskState.TASK_STATE_WORKING, f"{current.tool}: {status} by a person")
    event.metadata.update(
        {"approval": approval, "decision": status, "step": current.step, "role": current.role}
    )
    await publish_event(js, job, event, f"{task}:approval:{approval}:{status}")
    return current
