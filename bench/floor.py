"""The floor: what a step's hops cost with no crews code, run beside crews on the same servers.

``bench.floor_proc`` holds the processes (a coordinator and one worker per
role, bare nats-py, redis-py and httpx). ``FloorProcesses`` starts them on a
``BenchStack`` and runs jobs one at a time, followed the same way as crews'
(the running set in Redis, the recorded ``created_at`` and ``finished_at``),
so ``bench.overhead`` can alternate chunks of crews, CrewAI and floor jobs
and divide crews' CPU and wall time per step by the floor's.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

import nats
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from bench.floor_proc import READY, ROLES, RUNNING, ensure_streams, job_key
from bench.stack import ROOT, BenchStack
from bench.stats import mean, median
from crews.local.servers import ServerProcess

STEPS_PER_JOB = len(ROLES)
SYSTEM = ("nats", "redis", "llm", "coordinator", "workers")  # every process but the driver


def cpu_ms_per_step(cpu_s: dict[str, float], steps: int, parts: Iterable[str] = SYSTEM) -> float:
    """CPU milliseconds per step summed over ``parts`` (default: every process but the driver)."""
    return sum(cpu_s.get(part, 0.0) for part in parts) / steps * 1000 if steps else float("nan")


@dataclass
class FloorRun:
    """The floor's figures over its chunks of jobs."""

    jobs: int = 0
    job_s: list[float] = field(default_factory=list, repr=False)
    cpu_s: dict[str, float] = field(default_factory=dict)

    @property
    def ms_per_step(self) -> float:
        return mean(self.job_s) * 1000 / STEPS_PER_JOB

    @property
    def job_p50_ms(self) -> float:
        return median(self.job_s) * 1000

    @property
    def cpu_ms_per_step(self) -> float:
        return cpu_ms_per_step(self.cpu_s, self.jobs * STEPS_PER_JOB)


@dataclass
class FloorClients:
    nc: NATS
    js: JetStreamContext
    redis: aioredis.Redis


class FloorProcesses:
    """The floor's coordinator and workers on ``stack``'s servers; ``run_jobs`` runs jobs one at a time."""

    def __init__(self, stack: BenchStack) -> None:
        self.stack = stack
        self.procs: dict[str, list[ServerProcess]] = {}
        self._clients: FloorClients | None = None

    async def start(self) -> FloorProcesses:
        nc = await nats.connect(self.stack.nats_url, name="floor-driver")
        self._clients = FloorClients(nc, nc.jetstream(), aioredis.Redis.from_url(self.stack.redis_url))
        await ensure_streams(self._clients.js)
        urls = ["--nats", self.stack.nats_url, "--redis", self.stack.redis_url]
        coordinator = self._process("floor-coordinator", ["coordinator", *urls])
        workers = [
            self._process(f"floor-{role}", ["worker", "--role", role, "--llm", self.stack.llm_url, *urls])
            for role in ROLES
        ]
        for proc in (coordinator, *workers):
            await asyncio.to_thread(proc.start)
        self.procs = {"coordinator": [coordinator], "workers": workers}
        return self

    def _process(self, name: str, args: list[str]) -> ServerProcess:
        argv = [sys.executable, "-m", "bench.floor_proc", *args]
        return ServerProcess(name, argv, READY, 0, env=self.stack.env(), cwd=str(ROOT))

    def pids(self) -> dict[str, list[int]]:
        """The floor's processes and the stack's servers (not crews' processes), by part."""
        found = {name: [s.proc.pid] for name, s in self.stack.servers.items() if s.proc is not None}
        mine = {name: [p.proc.pid for p in procs if p.proc is not None] for name, procs in self.procs.items()}
        return found | mine

    async def run_jobs(self, n: int, *, timeout_s: float = 30.0, poll_s: float = 0.002) -> list[float]:
        """``n`` jobs one after another, each awaited as crews' are; each one's recorded duration."""
        assert self._clients is not None, "start() first"
        r, js = self._clients.redis, self._clients.js
        durations = []
        for _ in range(n):
            job = uuid.uuid4().hex
            async with r.pipeline(transaction=False) as pipe:
                pipe.hset(job_key(job), "created_at", time.time())
                pipe.zadd(RUNNING, {job: time.time()})
                await pipe.execute()
            await js.publish("floor.jobs", f'{{"job": "{job}"}}'.encode(), headers={"Nats-Msg-Id": job})
            deadline = time.monotonic() + timeout_s
            while (await r.zscore(RUNNING, job)) is not None:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"floor job {job} did not end within {timeout_s:g} s")
                await asyncio.sleep(poll_s)
            created, finished = await r.hmget(job_key(job), ["created_at", "finished_at"])
            durations.append(float(finished) - float(created))
        return durations

    async def close(self) -> None:
        for proc in (p for group in self.procs.values() for p in group):
            await asyncio.to_thread(proc.stop, timeout=10)
        self.procs.clear()
        if self._clients is not None:
            await self._clients.redis.aclose()
            await self._clients.nc.drain()
            self._clients = None
