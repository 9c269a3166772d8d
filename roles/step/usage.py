"""Token usage per job and role, in the job's usage hash, and the job's token budget.

``RedisUsage`` is the ``inference.budget.TokenBudget`` the LLM pool is given
for a step: after each call it adds ``<role>:input_tokens``,
``<role>:output_tokens`` and ``<role>:calls`` (one transaction), and before
each call it refuses (``BudgetExceeded``) once the job as a whole has used
``limit`` tokens (``StepWork.max_tokens_budget``, the crew's
``budgets.max_tokens``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bus.contracts.usage import usage_increments, used_tokens
from inference.errors import BudgetExceeded
from inference.results import Usage

if TYPE_CHECKING:
    import redis.asyncio as aioredis


class RedisUsage:
    """Records usage in ``key`` and enforces the job's token budget (None: only record)."""

    def __init__(self, client: aioredis.Redis, key: str, *, limit: int | None = None) -> None:
        self._redis = client
        self.key = key
        self.limit = limit

    async def check(self, job_id: str, role: str) -> None:
        if self.limit is None:
            return
        used = await self.used_tokens()
        if used >= self.limit:
            raise BudgetExceeded(
                f"job {job_id} has used {used} of its {self.limit} tokens, so role {role} may not call the "
                "LLM again: raise the crew's budgets.max_tokens or make its tasks shorter",
                job_id=job_id,
                used=used,
                limit=self.limit,
            )

    async def record(self, job_id: str, role: str, usage: Usage) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            for field, amount in usage_increments(role, usage.input_tokens, usage.output_tokens).items():
                pipe.hincrby(self.key, field, amount)
            await pipe.execute()

    async def used_tokens(self) -> int:
        """Input plus output tokens of every role of the job so far."""
        return used_tokens(await self._redis.hgetall(self.key))
