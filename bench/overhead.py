"""1. Orchestration overhead per step: crews across processes vs CrewAI in one process, LLM answering at once.

crews: one coordinator and one worker per role, each its own process, over a
real NATS and Redis; jobs run one after another, so each figure is a job's own
latency. A job's time is what the system records (``finished_at -
created_at``), divided by its three steps. The LLM answers at once, but over
HTTP: its round trip (client and server) is measured on its own and reported,
since it is part of the crews figure and absent from CrewAI's.

CrewAI: the same crew kicked off once per job in one process, with an
in-process LLM that returns at once (``bench.crewai_baseline``), kept running
beside the crews stack. The two run in alternating chunks, so both see the
same load on a shared machine (CrewAI's figure moves more with load: it
starts threads and event loops for every task).

The floor (``bench.floor``): the same hops with bare nats-py, redis-py and
httpx, in the same process shape on the same servers, in a third
alternating chunk; crews' CPU per step (every process but the driver) and
wall time per step are divided by the floor's.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import crewai_env
from bench.crew import INPUTS, ROLES, STEPS_PER_JOB, outcome, register, wait_ended
from bench.floor import FloorProcesses, FloorRun, cpu_ms_per_step
from bench.procs import CpuMeter
from bench.stack import ROOT, BenchStack, Clients
from bench.stats import mean, median, percentile, ratio
from crews.jobs.control import submit_job
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
    floor: FloorRun | None = None

    @property
    def crews_cpu_ms_per_step(self) -> float:
        """CPU ms per step summed over NATS, Redis, the LLM, the coordinator and the workers."""
        return cpu_ms_per_step(self.cpu_s, (self.jobs - self.crews_lost) * STEPS_PER_JOB)

    @property
    def floor_cpu_ratio(self) -> float | None:
        """crews' CPU per step over the floor's, every process but the driver (target ≤ 2)."""
        return None if self.floor is None else ratio(self.crews_cpu_ms_per_step, self.floor.cpu_ms_per_step)

    @property
    def floor_wall_ratio(self) -> float | None:
        """crews' wall time per step over the floor's."""
        return None if self.floor is None else ratio(self.crews_ms_per_step, self.floor.ms_per_step)

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


class CrewAIBaseline:
    """The CrewAI baseline in its venv, kept running: ``run(n)`` kicks off ``n`` jobs and returns its report."""

    def __init__(self, python: Path, warmup: int, home: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CREWS_", "OTEL_"))}
        env["HOME"] = home  # CrewAI writes its storage under the home directory
        command = [
            str(python),
            str(ROOT / "bench" / "crewai_baseline.py"),
            "--serve",
            "--warmup",
            str(warmup),
        ]
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        self.about = self._answer()

    def _answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            assert self.proc.stderr is not None
            raise RuntimeError(f"the CrewAI baseline stopped: {self.proc.stderr.read()[-500:]}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def run(self, jobs: int) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{jobs}\n")
        self.proc.stdin.flush()
        return self._answer()

    def close(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
        self.proc.wait(30)


def _start_baseline(warmup: int, home: str) -> CrewAIBaseline | str:
    """The running baseline, or why there is none."""
    try:
        return CrewAIBaseline(crewai_env.ensure(), warmup, home)
    except (OSError, RuntimeError, ValueError, subprocess.CalledProcessError) as exc:
        return f"CrewAI baseline unavailable: {exc}"


async def run(
    jobs: int, warmup: int, *, crewai: bool = True, floor: bool = True, rounds: int = 3
) -> Overhead:
    """``jobs`` crews, CrewAI and floor jobs each, in ``rounds`` alternating chunks (same machine load)."""
    stack = BenchStack().start()
    crews_ids: list[str] = []
    crewai_reports: list[dict[str, Any]] = []
    cpu: dict[str, float] = {}
    floor_run = FloorRun() if floor else None
    floor_procs = FloorProcesses(stack)
    with tempfile.TemporaryDirectory(prefix="crews-bench-crewai-") as home:
        baseline = _start_baseline(warmup, home) if crewai else "skipped (--no-crewai)"
        try:
            stack.workers("overhead", ROLES, 1)
            stack.coordinator()
            if floor_run is not None:
                await floor_procs.start()
                await floor_procs.run_jobs(warmup)
            async with stack.clients() as c:
                crew = await register(c.store, "overhead")
                await _crews_jobs(c, crew, warmup)  # loads each worker's runtime and engine
                for chunk in _chunks(jobs, rounds):
                    meter = CpuMeter(stack.pids())
                    meter.start()
                    crews_ids += await _crews_jobs(c, crew, chunk)
                    _add(cpu, meter.stop())
                    if isinstance(baseline, CrewAIBaseline):
                        crewai_reports.append(await asyncio.to_thread(baseline.run, chunk))
                    if floor_run is not None:
                        await _floor_chunk(floor_procs, floor_run, chunk)
                result = await outcome(c.store, crews_ids)
            rtt = await llm_round_trip_ms(stack.llm_url, 100)
        finally:
            await floor_procs.close()
            stack.close()
            if isinstance(baseline, CrewAIBaseline):
                baseline.close()
    job_ms = [d * 1000 for d in result.durations()]
    found = Overhead(
        jobs=jobs,
        crews_ms_per_step=mean(job_ms) / STEPS_PER_JOB,
        crews_job_p50_ms=median(job_ms),
        crews_job_p95_ms=percentile(job_ms, 95),
        llm_round_trip_ms=rtt,
        crews_lost=jobs - result.completed,
        cpu_s=cpu,
        crewai_error=baseline if isinstance(baseline, str) else None,
        floor=floor_run,
    )
    if crewai_reports:
        _add_crewai(found, crewai_reports)
    return found


async def _crews_jobs(c: Clients, crew: str, n: int) -> list[str]:
    """Run ``n`` jobs one after another; their ids."""
    ids = []
    for _ in range(n):
        job = (await submit_job(c.js, c.store, crew, INPUTS)).id
        await wait_ended(c.store, [job], 30.0, poll_s=0.002)
        ids.append(job)
    return ids


async def _floor_chunk(procs: FloorProcesses, found: FloorRun, jobs: int) -> None:
    meter = CpuMeter(procs.pids() | {"driver": [os.getpid()]})
    meter.start()
    found.job_s += await procs.run_jobs(jobs)
    _add(found.cpu_s, meter.stop())
    found.jobs += jobs


def _add(total: dict[str, float], used: dict[str, float]) -> None:
    for name, seconds in used.items():
        total[name] = round(total.get(name, 0.0) + seconds, 3)


def _chunks(total: int, rounds: int) -> list[int]:
    size, extra = divmod(total, rounds)
    return [size + (1 if i < extra else 0) for i in range(rounds) if size or i < extra]


def _add_crewai(result: Overhead, reports: list[dict[str, Any]]) -> None:
    job_ms = [s * 1000 for report in reports for s in report["job_s"]]
    result.crewai_ms_per_step = mean(job_ms) / STEPS_PER_JOB
    result.crewai_job_p50_ms = median(job_ms)
    result.crewai_version = reports[0]["crewai"]
    result.crewai_llm_calls_per_job = sum(r["llm_calls"] for r in reports) / len(job_ms)
