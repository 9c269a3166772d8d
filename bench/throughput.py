"""2. Throughput: steps per second with 1, 2 and 4 workers per role, a backlog of jobs in flight.

Each configuration runs on a fresh stack (``bench.backlog``): all jobs are
submitted, then the coordinator starts, and the clock runs until the last
job ends. Every job must complete: any that failed or did not end within the
time limit counts as lost. On a shared machine the load drifts within
minutes, so with ``rounds`` > 1 the settings run in alternating order (1, 2,
4, then 4, 2, 1, ...) and each setting's figure sums its rounds: a drift
then weighs on every setting alike.
"""

from __future__ import annotations

from bench.backlog import BacklogRun, merge, run_backlog


async def run(
    jobs: tuple[int, ...],
    workers_per_role: tuple[int, ...],
    *,
    worker_concurrency: int,
    timeout_s: float,
    rounds: int = 1,
) -> list[BacklogRun]:
    """One entry per entry of ``workers_per_role`` (with the matching number of ``jobs``), over ``rounds``."""
    settings = list(zip(jobs, workers_per_role, strict=True))
    found: dict[int, list[BacklogRun]] = {}
    for i in range(rounds):
        for n, per_role in settings if i % 2 == 0 else reversed(settings):
            run = await run_backlog(n, per_role, worker_concurrency=worker_concurrency, timeout_s=timeout_s)
            found.setdefault(per_role, []).append(run)
    return [merge(found[per_role]) for _, per_role in settings]
