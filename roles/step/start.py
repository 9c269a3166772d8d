"""What a delivered step finds in Redis before it runs, read in one round trip.

The worker needs four things before it starts a step: whether the step has a
result already (a redelivery), whether the job still runs, the turns an
earlier delivery recorded, and the shared memory its prompt shows. The same
round trip says the step has started: the delivery's attempt in the job's
progress hash, which job reads show as the step's ``working`` state (the
coordinator does not consume ``WORKING``), and the step's first LLM call
reserves its tokens of the job's budget (``RedisUsage.reserve_at_start``). The keys share the job's hash tag
(``crews:{job:<id>}:…``), so one pipeline serves them on a cluster too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bus.contracts.result import StepResult
from bus.contracts.step import StepWork
from roles.step.checkpoint import StepCheckpoint
from roles.step.usage import FirstCall, RedisUsage

if TYPE_CHECKING:
    import redis.asyncio as aioredis


@dataclass(frozen=True)
class StepStart:
    stored: StepResult | None
    """The step's recorded result (None: not run to the end yet)."""
    status: str | None
    """The job's status."""
    checkpoint: StepCheckpoint
    memory: dict[str, str]
    """The job's shared memory as the step starts."""


async def read_start(
    client: aioredis.Redis,
    work: StepWork,
    attempt: int,
    *,
    budget: RedisUsage | None = None,
    first_call: FirstCall | None = None,
) -> StepStart:
    """What delivery ``attempt`` of ``work`` finds, with the attempt recorded as started; ``budget`` given
    ``first_call``: that call's reservation is made in the same round trip (``RedisUsage.reserve_at_start``)."""
    pipe = client.pipeline(transaction=False)
    if work.keys.progress:  # before the reads: a redelivery or a stopped job is shown by its state, not this
        pipe.hset(work.keys.progress, work.step, attempt)
    pipe.hget(work.keys.results, work.step)
    pipe.hget(work.keys.state, "status")
    pipe.hgetall(work.keys.memory)
    if work.keys.turns:
        pipe.hgetall(work.keys.turns)
    reserved = None
    if budget is not None and first_call is not None:
        reserved = budget.reserve_at_start(pipe, first_call, work.keys.memory)
    replies = await pipe.execute()
    if reserved is not None:
        reserved(replies.pop())
    raw_result, status, memory, *turns = replies[1:] if work.keys.progress else replies
    if work.keys.turns:
        checkpoint = StepCheckpoint.of_hash(client, work.keys.turns, work.job, work.step, turns[0])
    else:
        checkpoint = StepCheckpoint.off(work.job, work.step)
    stored = None if raw_result is None else StepResult.model_validate_json(raw_result)
    return StepStart(stored, status, checkpoint, memory)
