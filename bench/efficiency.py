"""3. LLM-bound efficiency: wall time over ideal time when the LLM is the bottleneck.

The benchmark LLM answers each request after ``L`` seconds and serves at most
``C`` requests at once (``bench.llm_server``); workers may run more steps
than that at once, so steps queue at the LLM as they would at a vLLM server.
``N`` jobs of three sequential steps need ``3N`` LLM calls, so with ``C``
slots the ideal wall time is ``L * max(3, ceil(3N / C))``: each job's chain of
three calls, or the pool kept busy the whole time. Efficiency is the measured
wall time (coordinator ready → last job's end) over that; 1.0 is perfect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.backlog import BacklogRun, run_backlog
from bench.crew import STEPS_PER_JOB


@dataclass
class Efficiency:
    jobs: int
    llm_latency_s: float
    llm_concurrency: int
    ideal_s: float
    run: BacklogRun

    @property
    def ratio(self) -> float:
        """Actual / ideal wall time (target ≤ 1.05)."""
        return self.run.wall_s / self.ideal_s


def ideal_s(jobs: int, latency_s: float, concurrency: int) -> float:
    return latency_s * max(STEPS_PER_JOB, math.ceil(STEPS_PER_JOB * jobs / concurrency))


async def run(latency_s: float, concurrency: int, jobs: tuple[int, ...]) -> list[Efficiency]:
    results = []
    for n in jobs:
        run = await run_backlog(
            n,
            1,
            worker_concurrency=max(n, concurrency),
            timeout_s=60 + 10 * ideal_s(n, latency_s, concurrency),
            llm_latency_s=latency_s,
            llm_concurrency=concurrency,
        )
        results.append(Efficiency(n, latency_s, concurrency, ideal_s(n, latency_s, concurrency), run))
    return results
