"""The chaos run's processes, and the five ways it breaks them.

Real ``nats-server -js`` and a Redis-compatible server (append-only file,
fsync always) on the run's directory, two coordinators and several ledger
workers per role (``tests.chaos.worker``), each its own process with its
whole output in ``<workdir>/logs``. A kill is a SIGKILL of the process
group; a killed coordinator or worker is replaced by a new process, a killed
server is started again on the same port and store once the outage was seen.
A paused worker (SIGSTOP, as a long GC pause or a partition would) is
continued (SIGCONT) once its step was handed to another worker, so two
workers finish the same step and only one result may count.
Starting a process blocks (it waits for its ready line), so it runs in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from crews.local.servers import ServerProcess, nats_server, redis_server
from tests.chaos.ledger import LEDGER_ENV
from tests.e2e.stack import Stack

READY_TIMEOUT_S = 90.0  # the machine is shared: a worker may take long to import under load
OUTAGE_SEEN_TIMEOUT_S = 20.0

KillKind = str  # "worker" | "coordinator" | "nats" | "redis" | "pause"
KILL_KINDS: tuple[KillKind, ...] = ("worker", "coordinator", "nats", "redis", "pause")


@dataclass
class Cluster:
    """Servers, coordinators and workers of one chaos run; ``kills`` counts what was killed."""

    workdir: Path
    llm_url: str
    workers_per_role: dict[str, int]  # "crew/role" → how many workers to keep
    coordinators_wanted: int = 2
    env: dict[str, str] = field(default_factory=dict)
    nats: ServerProcess | None = None
    redis: ServerProcess | None = None
    stack: Stack | None = None
    coordinators: list[ServerProcess] = field(default_factory=list)
    workers: dict[str, list[ServerProcess]] = field(default_factory=dict)
    kills: Counter[str] = field(default_factory=Counter)
    exits: Counter[str] = field(default_factory=Counter)  # processes that died without being killed
    outages: list[tuple[str, float, float]] = field(default_factory=list)  # (server, down at, up at)

    @property
    def ledger(self) -> Path:
        return self.workdir / "ledger.jsonl"

    @property
    def logs(self) -> Path:
        return self.workdir / "logs"

    @property
    def nats_url(self) -> str:
        assert self.nats is not None
        return f"nats://127.0.0.1:{self.nats.port}"

    @property
    def redis_url(self) -> str:
        assert self.redis is not None
        return f"redis://127.0.0.1:{self.redis.port}/0"

    def start_servers(self) -> None:
        self.nats = nats_server(self.workdir / "jetstream")
        self.redis = redis_server(self.workdir / "redis")
        self.nats.start()
        self.redis.start()
        env = {
            LEDGER_ENV: str(self.ledger),
            "CREWS_ACK_WAIT_S": "3",  # a killed worker's steps come back after 3 s
            "CREWS_MAX_DELIVER": "12",  # kills and outages each cost a delivery: the doomed step costs 12
            "CREWS_TICK_S": "0.2",
            "CREWS_TICK_MAX_BACKOFF_S": "0.5",
            "CREWS_LLM_BACKOFF_MAX_S": "0.2",  # the doomed step's nak delay
            "CREWS_WORKER_GRACE_S": "1",
            **self.env,
        }
        self.stack = Stack(
            self.nats_url, self.redis_url, self.llm_url, extra_env=env, log_dir=self.logs,
            ready_timeout_s=READY_TIMEOUT_S,
        )  # fmt: skip

    async def start_processes(self) -> None:
        """The coordinators and every worker, started side by side."""
        starts = [self._add_coordinator() for _ in range(self.coordinators_wanted)]
        for target, count in self.workers_per_role.items():
            starts += [self._add_worker(target) for _ in range(count)]
        await asyncio.gather(*starts)

    async def _add_coordinator(self) -> ServerProcess:
        assert self.stack is not None
        proc = await asyncio.to_thread(self.stack.coordinator)
        self.coordinators.append(proc)
        return proc

    async def _add_worker(self, target: str) -> ServerProcess:
        assert self.stack is not None
        crew, role = target.split("/")
        proc = await asyncio.to_thread(self.stack.ledger_worker, crew, role)
        self.workers.setdefault(target, []).append(proc)
        return proc

    def all_workers(self) -> list[tuple[str, ServerProcess]]:
        return [(target, proc) for target, procs in self.workers.items() for proc in procs]

    async def kill_worker(self, rng: random.Random, pid: int | None = None) -> str:
        """SIGKILL the worker with ``pid`` (the one that just ran a tool call), else one at random; replace it."""
        candidates = self.all_workers()
        chosen = next(((t, p) for t, p in candidates if pid is not None and p.pid == pid), None)
        target, proc = chosen or rng.choice(candidates)
        proc.kill()
        self.kills["worker"] += 1
        self.workers[target].remove(proc)
        await self._add_worker(target)
        return target

    def pause_worker(self, pid: int) -> ServerProcess | None:
        """SIGSTOP the worker with ``pid`` (None when it is not one of ours any more)."""
        proc = next((p for _, p in self.all_workers() if p.pid == pid and p.running), None)
        if proc is not None:
            os.killpg(pid, signal.SIGSTOP)
            self.kills["pause"] += 1
        return proc

    @staticmethod
    def resume_worker(proc: ServerProcess) -> None:
        if proc.pid is not None and proc.running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGCONT)

    async def kill_coordinator(self, rng: random.Random) -> None:
        proc = rng.choice(self.coordinators)
        proc.kill()
        self.kills["coordinator"] += 1
        self.coordinators.remove(proc)
        await self._add_coordinator()

    def server_down(self, kind: str) -> dict[ServerProcess, int]:
        """SIGKILL nats-server or the Redis server; the coordinators' log marks from just before."""
        server = self.nats if kind == "nats" else self.redis
        assert server is not None
        marks = {proc: proc.mark() for proc in self.coordinators}
        server.kill()
        self.kills[kind] += 1
        self.outages.append((kind, time.time(), 0.0))
        return marks

    async def outage_seen(self, marks: dict[ServerProcess, int]) -> bool:
        """Wait until every coordinator logged a failed tick since ``marks`` (False if one did not in time)."""

        def seen(proc: ServerProcess, mark: int) -> bool:
            try:
                proc.wait_for_line("tick failed", OUTAGE_SEEN_TIMEOUT_S, after=mark)
            except TimeoutError:
                return False
            return True

        results = await asyncio.gather(*(asyncio.to_thread(seen, p, m) for p, m in marks.items()))
        return all(results)

    async def server_up(self, kind: str) -> None:
        """Start the server again on the same port and store."""
        server = self.nats if kind == "nats" else self.redis
        assert server is not None
        await asyncio.to_thread(server.start)
        down_kind, down_at, _ = self.outages[-1]
        self.outages[-1] = (down_kind, down_at, time.time())

    async def replace_the_dead(self) -> None:
        """A coordinator or worker that died on its own is counted and replaced (as a supervisor would)."""
        for proc in [p for p in self.coordinators if not p.running]:
            self.exits["coordinator"] += 1
            self.coordinators.remove(proc)
            await self._add_coordinator()
        for target, proc in [(t, p) for t, p in self.all_workers() if not p.running]:
            self.exits["worker"] += 1
            self.workers[target].remove(proc)
            await self._add_worker(target)

    def worker_logs(self) -> Iterable[Path]:
        return sorted(self.logs.glob("*ledger-worker*.log"))

    def close(self) -> None:
        """SIGKILL everything (the run is over; nothing to hand back)."""
        procs = list(self.stack.procs) if self.stack is not None else []
        for proc in [*procs, self.nats, self.redis]:
            if proc is not None:
                with contextlib.suppress(Exception):
                    proc.kill()
