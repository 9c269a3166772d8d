"""Token usage and cost per job and role, in the job's usage hash, and the job's token and money budgets.

``RedisUsage`` is the ``inference.budget.TokenBudget`` the LLM pool is given
for a step: after each call it adds ``<role>:input_tokens``,
``<role>:output_tokens``, ``<role>:cost_usd`` (the call's priced usage,
``inference.pricing``) and ``<role>:calls`` (one script; a worker's step holds
it for its next write, see ``RedisUsage``), and before
each call it refuses (``BudgetExceeded``) once the job as a whole has used or
reserved ``limit`` tokens (``StepWork.max_tokens_budget``: the crew's
``budgets.max_tokens``, else the operator's default) or spent ``cost_limit``
USD (``StepWork.max_cost_usd_budget``, the crew's ``budgets.max_cost_usd``). The check and the
reservation are one script, and calls in flight hold their reservation in
``<usage key>:reserved`` (same hash tag, same slot), so workers calling at
once cannot overshoot the budget by more than one call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bus.contracts.usage import cost_field, usage_increments, used
from inference.errors import BudgetExceeded
from inference.results import Usage

if TYPE_CHECKING:
    from redis.asyncio.client import Pipeline

    from bus.redis_client import RedisClient


def record_lua(usage: str, reserved: str, first: str) -> str:
    """Lua adding one call's usage to hash ``usage``: ``ARGV[first]`` the tokens reserved for the call
    (released from ``reserved``), then field, amount pairs to HINCRBY, then the cost field and USD ('' for
    none) as the last two arguments. ``roles.step.results`` runs it with a step's result."""
    return f"""
if tonumber(ARGV[{first}]) > 0 then redis.call('DECRBY', {reserved}, ARGV[{first}]) end
for i = {first} + 1, #ARGV - 2, 2 do redis.call('HINCRBY', {usage}, ARGV[i], ARGV[i + 1]) end
if ARGV[#ARGV] ~= '' then redis.call('HINCRBYFLOAT', {usage}, ARGV[#ARGV - 1], ARGV[#ARGV]) end
"""


# KEYS: the usage hash, the reservations; ARGV: as record_lua's. One round trip per call.
_RECORD = record_lua("KEYS[1]", "KEYS[2]", "1") + "return 1\n"
UsageArgs = list[str | int]
ReplyTaker = Callable[[list[int]], None]


# Refuse when used + reserved reach the limit; else reserve ``amount``. Returns {admitted, used, reserved, amount}.
_ADMIT = """
local used = 0
local raw = redis.call('HGETALL', KEYS[1])
for i = 1, #raw, 2 do
  local field = raw[i]
  if string.sub(field, -13) == ':input_tokens' or string.sub(field, -14) == ':output_tokens' then
    used = used + tonumber(raw[i + 1])
  end
end
local reserved = tonumber(redis.call('GET', KEYS[2]) or '0')
if used + reserved >= tonumber(ARGV[1]) then return {0, used, reserved, 0} end
redis.call('INCRBY', KEYS[2], amount)
redis.call('EXPIRE', KEYS[2], ARGV[3])
return {1, used, reserved, amount}
"""
# KEYS: the usage hash, the reservations; ARGV: the limit, the tokens to reserve, the TTL.
_RESERVE = "local amount = tonumber(ARGV[2])\n" + _ADMIT
# The first call's reservation, made in the step's start (``roles.step.start``). KEYS: the usage hash, the
# reservations, the shared memory; ARGV: the limit, the call's tokens but the memory's, the TTL, the memory's
# character cap in the prompt. The memory's share is counted here, as ``inference.client.prompt_estimate``
# counts (~3 characters a token; an entry's quotes and separators as 8), so the start reserves about
# what the first call would, without the round trip the call's own check makes.
_RESERVE_AT_START = (
    """
local chars = 0
local memory = redis.call('HGETALL', KEYS[3])
for i = 1, #memory, 2 do chars = chars + #memory[i] + #memory[i + 1] + 8 end
local amount = tonumber(ARGV[2]) + math.floor(math.min(chars, tonumber(ARGV[4])) / 3)
"""
    + _ADMIT
)
RESERVATION_TTL_S = 24 * 3600


@dataclass(frozen=True)
class FirstCall:
    """What a step's first LLM call will reserve, as far as its start knows: ``tokens`` (its
    ``max_tokens`` and its prompt without the shared memory) and the memory's share, at most
    ``memory_chars`` characters of it."""

    tokens: int
    memory_chars: int


class RedisUsage:
    """Records usage in ``key`` and enforces the job's token budget (None: only record).

    ``hold``: a call's usage is held, not written at once, and goes with the next write the step makes
    anyway: the next call's budget check (``check`` writes it first), or the step's result (the worker
    passes this object to ``ResultStore.record``, which writes both in one script); ``flush`` writes
    what is left (a step that ends without a result). The held usage leaves in the next round trip the
    step makes, as it would have alone: no paid token is left out for longer, and a step of one call
    makes one round trip less.

    ``reserve_at_start``: the first call's reservation goes with the step's start, and that call's
    ``check`` makes no round trip when the start's reservation covers it (the rest of it is released
    with the call); when it does not, the call reserves the difference (its admission then counts the
    start's share as held: stricter, never looser). A start refused by the budget reserves nothing, and
    the first ``check`` asks again, as any call does.
    """

    def __init__(
        self,
        client: RedisClient,
        key: str,
        *,
        limit: int | None = None,
        cost_limit: float | None = None,
        hold: bool = False,
    ) -> None:
        self._redis = client
        self.key = key
        self.reserved_key = f"{key}:reserved"
        self.limit = limit
        self.cost_limit = cost_limit
        self._reserve = client.register_script(_RESERVE)
        self._record = client.register_script(_RECORD)
        self._hold = hold
        self._held: list[UsageArgs] = []
        self._at_start = 0  # tokens the start reserved that no call has taken yet
        self._extra = 0  # tokens reserved for the call in flight beyond its own reserve: released with it

    def reserve_at_start(self, pipe: Pipeline, first: FirstCall, memory_key: str) -> ReplyTaker | None:
        """Queue ``first``'s reservation on ``pipe``, its memory share counted from ``memory_key``; what takes
        the pipeline's reply for it. None, and nothing queued, when the job has no token budget."""
        if self.limit is None:
            return None
        args = (self.limit, first.tokens, RESERVATION_TTL_S, first.memory_chars)
        pipe.eval(_RESERVE_AT_START, 3, self.key, self.reserved_key, memory_key, *args)
        return self._reserved_at_start

    def _reserved_at_start(self, reply: list[int]) -> None:
        admitted, _, _, amount = (int(value) for value in reply)
        self._at_start = amount if admitted else 0

    async def check(self, job_id: str, role: str, *, reserve: int = 0) -> None:
        await self._write_held()  # what the job used so far counts
        if self.cost_limit is not None:
            _, cost = await self.used()
            if cost >= self.cost_limit:
                raise BudgetExceeded(
                    f"job {job_id} has spent ${cost:.6f} of its ${self.cost_limit:g}, so role {role} may not "
                    "call the LLM again: raise the crew's budgets.max_cost_usd or make its tasks shorter",
                    job_id=job_id,
                    used=cost,
                    limit=self.cost_limit,
                )
        if self.limit is None:
            return
        at_start, self._at_start = self._at_start, 0
        reserve = max(reserve, 0)
        if at_start and reserve <= at_start:
            self._extra = at_start - reserve
            return
        admitted, used, reserved, _ = await self._reserve(
            keys=[self.key, self.reserved_key], args=[self.limit, reserve - at_start, RESERVATION_TTL_S]
        )
        if not admitted:
            await self._release(at_start)
            held = f" (and calls running now hold {reserved} more)" if int(reserved) else ""
            raise BudgetExceeded(
                f"job {job_id} has used {used} of its {self.limit} tokens{held}, so role {role} may not call "
                "the LLM again: raise the crew's budgets.max_tokens or make its tasks shorter",
                job_id=job_id,
                used=int(used),
                limit=self.limit,
            )

    async def record(self, job_id: str, role: str, usage: Usage, *, reserved: int = 0) -> None:
        args: UsageArgs = [self._released_with(reserved)]
        for field, amount in usage_increments(role, usage.input_tokens, usage.output_tokens).items():
            args += [field, amount]
        args += [cost_field(role), repr(usage.cost_usd) if usage.cost_usd else ""]
        if self._hold:
            self._held.append(args)
            return
        await self._record(keys=[self.key, self.reserved_key], args=args)

    async def flush(self) -> None:
        """Write the usage held so far, and release what the start reserved if no call took it."""
        await self._write_held()
        at_start, self._at_start = self._at_start, 0
        await self._release(at_start)

    async def _write_held(self) -> None:
        while self._held:
            await self._record(keys=[self.key, self.reserved_key], args=self._held[0])
            del self._held[0]

    def take_held(self) -> UsageArgs | None:
        """The call usage held (``check`` writes before each call: at most one), or the start's unused
        reservation to release, for a script that writes it; None when there is neither. ``give_back``
        returns it when that write failed."""
        if self._held:
            return self._held.pop()
        if self._at_start:
            at_start, self._at_start = self._at_start, 0
            return [at_start, "", ""]  # nothing to add: the record's script only releases it
        return None

    def give_back(self, args: UsageArgs) -> None:
        self._held.append(args)

    async def release(self, job_id: str, role: str, reserved: int) -> None:
        await self._release(self._released_with(reserved))

    def _released_with(self, reserved: int) -> int:
        """What a call that reserved ``reserved`` gives back: its own and what the start reserved beyond it."""
        extra, self._extra = self._extra, 0
        return max(reserved, 0) + extra if self.limit is not None else 0

    async def _release(self, tokens: int) -> None:
        if tokens and self.limit is not None:
            await self._redis.decrby(self.reserved_key, tokens)

    async def used(self) -> tuple[int, float]:
        """Input plus output tokens, and USD, of every role of the job so far."""
        return used(await self._redis.hgetall(self.key))

    async def used_tokens(self) -> int:
        """Input plus output tokens of every role of the job so far."""
        return (await self.used())[0]
