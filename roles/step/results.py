"""Step results in the job's results hash: written once per step, whoever finishes first.

A result is ``{"output", "data", "role", "worker", "usage": {"input_tokens", "output_tokens", "cost_usd"}, "duration_s"}``
under the step's id. ``HSETNX`` makes the write once-only: a worker that ran a
redelivered step after another had recorded it gets the first result back and
reports that one. For a worker's step (``ResultStore.of_step``) the write is
one script that first reads the job's status: a job that stopped while the
answer came gets no new result (``StepCancelled``), and the step's checkpoint
goes, and its last LLM call's usage is added, in the same round trip.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bus.contracts.result import StepResult
from bus.contracts.states import STOPPED
from bus.contracts.step import StepWork
from roles.errors import StepCancelled
from roles.step.usage import record_lua

__all__ = ["ResultStore", "StepResult"]

if TYPE_CHECKING:
    from bus.redis_client import RedisClient
    from roles.step.checkpoint import StepCheckpoint
    from roles.step.usage import RedisUsage


# KEYS: the results hash, the turns hash (or the results hash), then optionally the usage hash and its
# reservations; ARGV: step, result, the checkpoint's field prefix ('' for none), the job's state hash ('' for
# no status check), the number of stopped statuses, the stopped statuses, then (with the usage keys) one
# call's usage as ``roles.step.usage.record_lua`` takes it. The usage is added first, whatever else
# happens: its tokens were paid. The state hash is an argument, not a key: a role may only read it, and
# ACLs take every key of EVAL as written to (it shares the job's hash tag, so the script stays in one
# cluster slot). Returns {0, status} (the job stopped: no result written), {1, ''} (written) or
# {2, stored} (another run recorded first).
_RECORD = (
    """
local stopped = tonumber(ARGV[5])
if #KEYS == 4 then
  local usage = 6 + stopped"""
    + record_lua("KEYS[3]", "KEYS[4]", "usage")
    + """end
if ARGV[4] ~= '' then
  local status = redis.call('HGET', ARGV[4], 'status')
  for i = 6, 5 + stopped do
    if status == ARGV[i] then return {0, status} end
  end
end
local written = redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] ~= '' then
  for _, field in ipairs(redis.call('HKEYS', KEYS[2])) do
    if string.sub(field, 1, #ARGV[3]) == ARGV[3] then redis.call('HDEL', KEYS[2], field) end
  end
end
if written == 1 then return {1, ''} end
return {2, redis.call('HGET', KEYS[1], ARGV[1]) or ''}
"""
)


class ResultStore:
    """One job's results hash."""

    def __init__(self, client: RedisClient, key: str, *, job: str = "", state_key: str = "") -> None:
        self._redis = client
        self.key = key
        self._job, self._state_key = job, state_key
        self._record = client.register_script(_RECORD)

    @classmethod
    def of_step(cls, client: RedisClient, work: StepWork) -> ResultStore:
        """The results of ``work``'s job, written only while the job runs."""
        return cls(client, work.keys.results, job=work.job, state_key=work.keys.state)

    async def get(self, step: str) -> StepResult | None:
        raw: str | None = await self._redis.hget(self.key, step)
        return None if raw is None else StepResult.model_validate_json(raw)

    async def record(
        self,
        step: str,
        result: StepResult,
        *,
        clearing: StepCheckpoint | None = None,
        usage: RedisUsage | None = None,
    ) -> tuple[StepResult, bool]:
        """Write ``result`` unless the step has one; returns the stored result and whether it is ours.

        ``clearing``: the step's checkpoint, removed in the same round trip (once a result is
        stored, whoever wrote it, the turns are not needed: a redelivery replays the result).
        ``usage``: the step's budget; the call usage it holds is written in the same round trip.
        Raises ``StepCancelled`` (no result written) when the job stopped (``of_step`` only).
        """
        turns, prefix = clearing.clearing() if clearing is not None else (None, "")
        stopped = sorted(STOPPED) if self._state_key else []
        args: list[str | int] = [
            step,
            result.model_dump_json(),
            prefix,
            self._state_key,
            len(stopped),
            *stopped,
        ]
        keys = [self.key, turns or self.key]
        held = usage.take_held() if usage is not None else None
        if usage is not None and held is not None:
            keys += [usage.key, usage.reserved_key]
            args += held
        try:
            outcome, stored = await self._record(keys=keys, args=args)
        except BaseException:
            if usage is not None and held is not None:
                usage.give_back(held)
            raise
        if int(outcome) == 0:
            raise StepCancelled(self._job, str(stored))
        if int(outcome) == 1:
            return result, True
        if not stored:  # the job's keys expired between the two writes
            raise LookupError(f"result of step {step} vanished from {self.key}")
        return StepResult.model_validate_json(stored), False
