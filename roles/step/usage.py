"""Token usage and cost per job and role, in the job's usage hash, and the job's token and money budgets.

``RedisUsage`` is the ``inference.budget.TokenBudget`` the LLM pool is given
for a step: after each call it adds ``<role>:input_tokens``,
``<role>:output_tokens``, ``<role>:cost_usd`` (the call's priced usage,
``inference.pricing``) and ``<role>:calls`` (one script on the one key: atomic on a server and in a cluster), and before
each call it refuses (``BudgetExceeded``) once the job as a whole has used
``limit`` tokens (``StepWork.max_tokens_budget``, the crew's
``budgets.max_tokens``) or spent ``cost_limit`` USD
(``StepWork.max_cost_usd_budget``, the crew's ``budgets.max_cost_usd``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bus.contracts.usage import cost_field, usage_increments, used
from inference.errors import BudgetExceeded
from inference.results import Usage

if TYPE_CHECKING:
    from bus.redis_client import RedisClient

# KEYS[1]: the usage hash; ARGV: field, amount pairs to HINCRBY, then the cost field and USD ('' for none).
_RECORD = """
for i = 1, #ARGV - 2, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
if ARGV[#ARGV] ~= '' then redis.call('HINCRBYFLOAT', KEYS[1], ARGV[#ARGV - 1], ARGV[#ARGV]) end
return 1
"""


class RedisUsage:
    """Records usage in ``key`` and enforces the job's budgets (None: only record)."""

    def __init__(
        self,
        client: RedisClient,
        key: str,
        *,
        limit: int | None = None,
        cost_limit: float | None = None,
    ) -> None:
        self._redis = client
        self.key = key
        self.limit = limit
        self.cost_limit = cost_limit
        self._record = client.register_script(_RECORD)

    async def check(self, job_id: str, role: str) -> None:
        if self.limit is None and self.cost_limit is None:
            return
        tokens, cost = await self.used()
        if self.limit is not None and tokens >= self.limit:
            raise BudgetExceeded(
                f"job {job_id} has used {tokens} of its {self.limit} tokens, so role {role} may not call the "
                "LLM again: raise the crew's budgets.max_tokens or make its tasks shorter",
                job_id=job_id,
                used=tokens,
                limit=self.limit,
            )
        if self.cost_limit is not None and cost >= self.cost_limit:
            raise BudgetExceeded(
                f"job {job_id} has spent ${cost:.6f} of its ${self.cost_limit:g}, so role {role} may not call "
                "the LLM again: raise the crew's budgets.max_cost_usd or make its tasks shorter",
                job_id=job_id,
                used=cost,
                limit=self.cost_limit,
            )

    async def record(self, job_id: str, role: str, usage: Usage) -> None:
        args: list[str | int] = []
        for field, amount in usage_increments(role, usage.input_tokens, usage.output_tokens).items():
            args += [field, amount]
        args += [cost_field(role), repr(usage.cost_usd) if usage.cost_usd else ""]
        await self._record(keys=[self.key], args=args)

    async def used(self) -> tuple[int, float]:
        """Input plus output tokens, and USD, of every role of the job so far."""
        return used(await self._redis.hgetall(self.key))

    async def used_tokens(self) -> int:
        """Input plus output tokens of every role of the job so far."""
        return (await self.used())[0]
