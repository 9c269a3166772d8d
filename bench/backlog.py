"""Run a backlog of jobs through a fresh stack: the shared core of the throughput and efficiency benchmarks.

Workers and a coordinator start, and ``warmup`` jobs run through them (each
worker loads its runtime and opens its LLM connections); the coordinator
stops; then every job is submitted (recorded in Redis and on
the jobs stream) while no coordinator runs, so the submissions' own cost is
not measured; then the coordinator starts and the clock runs from its ready
line to the last job's ``finished_at``. Jobs that did not complete within
the time limit, or failed, are counted as lost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from bench.crew import ROLES, STEPS_PER_JOB, outcome, register, submit_many, wait_ended
from bench.procs import CpuMeter
from bench.stack import BenchStack, Clients


@dataclass
class BacklogRun:
    jobs: int
    workers_per_role: int
    worker_concurrency: int
    wall_s: float
    completed: int
    lost: int
    statuses: dict[str, int]
    submit_jobs_per_s: float
    cpu_s: dict[str, float] = field(default_factory=dict)
    rounds: int = 1

    @property
    def steps_per_s(self) -> float:
        return self.completed * STEPS_PER_JOB / self.wall_s if self.wall_s > 0 else 0.0


async def run_backlog(
    jobs: int,
    workers_per_role: int,
    *,
    worker_concurrency: int,
    timeout_s: float,
    llm_latency_s: float = 0.0,
    llm_concurrency: int = 0,
    warmup: int = 20,
) -> BacklogRun:
    env = {"CREWS_WORKER_CONCURRENCY": str(worker_concurrency)}
    stack = BenchStack(llm_latency_s=llm_latency_s, llm_concurrency=llm_concurrency, extra_env=env).start()
    try:
        stack.workers("backlog", ROLES, workers_per_role)
        async with stack.clients() as c:
            crew = await register(c.store, "backlog")
            await _warm_up(stack, c, crew, warmup)
            begin = time.perf_counter()
            ids = await submit_many(c.js, c.store, crew, jobs)
            submit_rate = jobs / (time.perf_counter() - begin)
            stack.coordinator()
            started = time.time()
            meter = CpuMeter(stack.pids())
            meter.start()
            await wait_ended(c.store, ids, timeout_s, poll_s=0.1)  # the end time is the recorded one
            cpu = meter.stop()
            result = await outcome(c.store, ids)
    finally:
        stack.close()
    wall = (max(result.finished) - started) if result.finished else float("nan")
    return BacklogRun(
        jobs=jobs,
        workers_per_role=workers_per_role,
        worker_concurrency=worker_concurrency,
        wall_s=wall,
        completed=result.completed,
        lost=jobs - result.completed,
        statuses=dict(result.statuses),
        submit_jobs_per_s=submit_rate,
        cpu_s=cpu,
    )


def merge(runs: list[BacklogRun]) -> BacklogRun:
    """Several runs of one setting as one: jobs, wall time, outcomes and CPU summed."""
    first = runs[0]
    statuses: dict[str, int] = {}
    cpu: dict[str, float] = {}
    for run in runs:
        for key, count in run.statuses.items():
            statuses[key] = statuses.get(key, 0) + count
        for key, seconds in run.cpu_s.items():
            cpu[key] = round(cpu.get(key, 0.0) + seconds, 3)
    return BacklogRun(
        jobs=sum(r.jobs for r in runs),
        workers_per_role=first.workers_per_role,
        worker_concurrency=first.worker_concurrency,
        wall_s=sum(r.wall_s for r in runs),
        completed=sum(r.completed for r in runs),
        lost=sum(r.lost for r in runs),
        statuses=statuses,
        submit_jobs_per_s=min(r.submit_jobs_per_s for r in runs),
        cpu_s=cpu,
        rounds=len(runs),
    )


async def _warm_up(stack: BenchStack, c: Clients, crew: str, jobs: int) -> None:
    """Run ``jobs`` jobs at once through a coordinator, then stop it (its durable consumers stay)."""
    if jobs <= 0:
        return
    coordinator = stack.coordinator()
    ids = await submit_many(c.js, c.store, crew, jobs)
    await wait_ended(c.store, ids, 60.0)
    coordinator.stop(timeout=10)
    stack.crews_procs["coordinator"].remove(coordinator)
