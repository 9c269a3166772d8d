"""1. Orchestration overhead per step: crews across processes vs CrewAI in one process, LLM answering at once.

crews: one coordinator and one worker per role, each its own process, over a
real NATS and Redis; jobs run one after another, so each figure is a job's own
latency. A job's time is what the system records (``finished_at -
created_at``), divided by its three steps. The LLM answers at once, but over
HTTP: its round trip (client and server) is measured on its own and reported,
since it is part of the crews figure and absent from CrewAI's.

CrewAI: the same crew kicked off once per job in one process, with an
in-process LLM that returns at once (``bench.crewai_baseline``).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import crewai_env
from bench.crew import INPUTS, ROLES, STEPS_PER_JOB, outcome, register, wait_ended
from bench.procs import CpuMeter
from bench.stack import ROOT, BenchStack
from bench.stats import mean, median, percentile, ratio
from crews.job_control import submit_job
from inference.client import LLMPool
from inference.settings import InferenceSettings


@dataclass
class Overhead:
    jobs: int
    crews_ms_per_step: float
    crews_job_p50_ms: float
    crews_job_p95_ms: float
    llm_round_trip_ms: float
    crews_lost: int
    crewai_ms_per_step: float | None = None
    crewai_job_p50_ms: float | None = None
    crewai_version: str | None = None
    crewai_llm_calls_per_job: float | None = None
    crewai_error: str | None = None
    cpu_s: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        """crews' ms/step over CrewAI's (target ≤ 0.1)."""
        return ratio(self.crews_ms_per_step, self.crewai_ms_per_step)

    @property
    def ratio_without_llm(self) -> float | None:
        """The same, after taking the LLM's HTTP round trip (absent from CrewAI's run) out of crews' figure."""
        return ratio(self.crews_ms_per_step - self.llm_round_trip_ms, self.crewai_ms_per_step)


async def llm_round_trip_ms(url: str, calls: int) -> float:
    """Median time of one chat completion from ``LLMPool`` to the benchmark LLM (no latency set)."""
    messages = [
        {"role": "system", "content": "You are Researcher. Your goal: find facts about honey bees."},
        {"role": "user", "content": "Research honey bees. " * 20},
    ]
    times = []
    async with LLMPool(InferenceSettings(llm_urls=[url], llm_max_retries=0)) as pool:
        for i in range(calls + 5):
            begin = time.perf_counter()
            await pool.chat(messages, job_id="rtt", role="researcher", step="research")
            if i >= 5:
                times.append(time.perf_counter() - begin)
    return median(times) * 1000


async def run_crews(jobs: int, warmup: int) -> Overhead:
    stack = BenchStack().start()
    try:
        stack.workers("overhead", ROLES, 1)
        stack.coordinator()
        async with stack.clients() as c:
            crew = await register(c.store, "overhead")
            for _ in range(warmup):  # loads each worker's runtime and engine
                job = (await submit_job(c.js, c.store, crew, INPUTS)).id
                await wait_ended(c.store, [job], 30.0, poll_s=0.005)
            meter = CpuMeter(stack.pids())
            meter.start()
            ids = []
            for _ in range(jobs):
                job = (await submit_job(c.js, c.store, crew, INPUTS)).id
                await wait_ended(c.store, [job], 30.0, poll_s=0.002)
                ids.append(job)
            cpu = meter.stop()
            result = await outcome(c.store, ids)
        rtt = await llm_round_trip_ms(stack.llm_url, 100)
    finally:
        stack.close()
    job_ms = [d * 1000 for d in result.durations()]
    return Overhead(
        jobs=jobs,
        crews_ms_per_step=mean(job_ms) / STEPS_PER_JOB,
        crews_job_p50_ms=median(job_ms),
        crews_job_p95_ms=percentile(job_ms, 95),
        llm_round_trip_ms=rtt,
        crews_lost=jobs - result.completed,
        cpu_s=cpu,
    )


def run_crewai(result: Overhead, jobs: int, warmup: int) -> None:
    """Fill in CrewAI's figures (or why there are none) from the baseline script in its own venv."""
    try:
        python = crewai_env.ensure()
    except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
        result.crewai_error = f"CrewAI could not be installed: {exc}"
        return
    with tempfile.TemporaryDirectory(prefix="crews-bench-crewai-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CREWS_", "OTEL_"))}
        env["HOME"] = home  # CrewAI writes its storage under the home directory
        command = [str(python), str(Path(ROOT, "bench", "crewai_baseline.py")), "--jobs", str(jobs)]
        command += ["--warmup", str(warmup)]
        run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, check=False)
    if run.returncode != 0:
        result.crewai_error = f"the CrewAI baseline failed (exit {run.returncode}): {run.stderr[-500:]}"
        return
    report = json.loads(run.stdout.strip().splitlines()[-1])
    job_ms = [s * 1000 for s in report["job_s"]]
    result.crewai_ms_per_step = mean(job_ms) / STEPS_PER_JOB
    result.crewai_job_p50_ms = median(job_ms)
    result.crewai_version = report["crewai"]
    result.crewai_llm_calls_per_job = report["llm_calls"] / report["jobs"]


async def run(jobs: int, warmup: int, *, crewai: bool = True) -> Overhead:
    result = await run_crews(jobs, warmup)
    if crewai:
        run_crewai(result, jobs, warmup)
    else:
        result.crewai_error = "skipped (--no-crewai)"
    return result
