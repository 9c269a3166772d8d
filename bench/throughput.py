"""2. Throughput: steps per second with 1, 2 and 4 workers per role, a backlog of up to 1,000 jobs in flight.

Each configuration runs on a fresh stack (``bench.backlog``): all jobs are
submitted, then the coordinator starts, and the clock runs until the last
job ends. Every job must complete: any that failed or did not end within the
time limit counts as lost.
"""

from __future__ import annotations

from bench.backlog import BacklogRun, run_backlog


async def run(
    jobs: tuple[int, ...], workers_per_role: tuple[int, ...], *, worker_concurrency: int, timeout_s: float
) -> list[BacklogRun]:
    """One run per entry of ``workers_per_role``, with the matching number of ``jobs``."""
    return [
        await run_backlog(n, per_role, worker_concurrency=worker_concurrency, timeout_s=timeout_s)
        for n, per_role in zip(jobs, workers_per_role, strict=True)
    ]
