"""Token usage and per-job token budgets.

The client asks a ``TokenBudget`` before each call (``check``: raise
``BudgetExceeded`` to refuse it), reserving what the call may use at most
(``reserve``: its prompt estimate plus its ``max_tokens``), and tells it what
the call used (``record``, which gives the reservation back) or that it failed
(``release``). A call is refused once the job's used plus reserved tokens
reach the limit, so calls running at once cannot overshoot the budget by more
than one call. A Redis-backed budget shared by every worker of a job lives
with the job store; ``InMemoryTokenBudget`` is the one-process version (a
worker can build one per step from the step's remaining budget).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Protocol, runtime_checkable

from inference.errors import BudgetExceeded
from inference.results import Usage


@runtime_checkable
class TokenBudget(Protocol):
    """Decides whether a job may make another LLM call, and learns what each call used."""

    async def check(self, job_id: str, role: str, *, reserve: int = 0) -> None:
        """Raise ``BudgetExceeded`` when ``job_id`` may not call the LLM again; else hold ``reserve`` tokens."""

    async def record(self, job_id: str, role: str, usage: Usage, *, reserved: int = 0) -> None:
        """Add one call's usage to ``job_id``'s (and ``role``'s) totals, and give back its reservation."""

    async def release(self, job_id: str, role: str, reserved: int) -> None:
        """Give back the reservation of a call that failed."""


class InMemoryTokenBudget:
    """Per-job totals in this process; ``limit`` total tokens per job (None: only count)."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self._by_job: dict[str, Usage] = defaultdict(Usage)
        self._by_role: dict[tuple[str, str], Usage] = defaultdict(Usage)
        self._reserved: dict[str, int] = defaultdict(int)

    async def check(self, job_id: str, role: str, *, reserve: int = 0) -> None:
        used = self._by_job[job_id].total_tokens
        if self.limit is not None and used + self._reserved[job_id] >= self.limit:
            raise BudgetExceeded(
                f"job {job_id} has used {used} of its {self.limit} tokens (role {role} asked for more): "
                "raise the crew's token budget or make its tasks shorter",
                job_id=job_id,
                used=used,
                limit=self.limit,
            )
        self._reserved[job_id] += reserve

    async def record(self, job_id: str, role: str, usage: Usage, *, reserved: int = 0) -> None:
        self._by_job[job_id] += usage
        self._by_role[(job_id, role)] += usage
        self._reserved[job_id] -= reserved

    async def release(self, job_id: str, role: str, reserved: int) -> None:
        self._reserved[job_id] -= reserved

    def used(self, job_id: str) -> Usage:
        """What ``job_id`` has used so far."""
        return self._by_job.get(job_id, Usage())

    def used_by_role(self, job_id: str) -> dict[str, Usage]:
        """What each role of ``job_id`` has used so far."""
        return {role: usage for (job, role), usage in self._by_role.items() if job == job_id}
