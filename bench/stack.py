"""A crews deployment in processes on this machine, for one benchmark: NATS, Redis, the LLM, crews processes.

Every process is real and separate: ``nats-server -js`` and a Redis-compatible
server (as ``crews up`` starts them), the benchmark LLM (``bench.llm_server``),
the coordinator (``crews coordinator``) and role workers
(``crews role <crew>/<role>``), each started from its command and ready when
it prints its ready line. The benchmark talks to NATS and Redis with the same
clients the API uses.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from bench.llm_server import READY as LLM_READY
from bus.redis_client import redis_client
from bus.settings import RedisSettings
from crews.jobs.store import RedisJobStore
from crews.local.servers import ServerProcess, nats_server, redis_server

ROOT = Path(__file__).resolve().parents[1]
CREWS = str(Path(sys.executable).with_name("crews"))


@dataclass
class Clients:
    nc: NATS
    js: JetStreamContext
    store: RedisJobStore


@dataclass
class BenchStack:
    """Servers on free ports in a temporary directory; crews processes started and stopped on demand."""

    llm_latency_s: float = 0.0
    llm_concurrency: int = 0
    extra_env: dict[str, str] = field(default_factory=dict)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="crews-bench-")))
    servers: dict[str, ServerProcess] = field(default_factory=dict)
    crews_procs: dict[str, list[ServerProcess]] = field(default_factory=dict)
    llm_url: str = ""  # given: an LLM pool already running (the real vLLM); else the benchmark LLM

    def start(self) -> BenchStack:
        self.servers["nats"] = nats_server(self.workdir / "nats")
        self.servers["redis"] = redis_server(self.workdir / "redis")
        if self.llm_url:
            for server in self.servers.values():
                server.start()
            return self
        argv = [sys.executable, "-m", "bench.llm_server", "--latency", f"{self.llm_latency_s}"]
        argv += ["--concurrency", str(self.llm_concurrency)]
        self.servers["llm"] = ServerProcess(
            "bench-llm", argv, LLM_READY, 0, env=self._base_env(), cwd=str(ROOT)
        )
        for server in self.servers.values():
            server.start()
        line = next(line for line in self.servers["llm"].log_tail.splitlines() if LLM_READY in line)
        self.llm_url = line.split(LLM_READY, 1)[1].strip()
        return self

    @property
    def nats_url(self) -> str:
        return f"nats://127.0.0.1:{self.servers['nats'].port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.servers['redis'].port}/0"

    def _base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CREWS_", "OTEL_"))}
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def env(self) -> dict[str, str]:
        """The environment of every crews process: the stack's URLs, no LLM retries, short grace."""
        env = self._base_env()
        env.update(
            CREWS_NATS_URL=self.nats_url,
            CREWS_REDIS_URL=self.redis_url,
            CREWS_LLM_URLS=self.llm_url,
            CREWS_LLM_MAX_RETRIES="0",
            CREWS_WORKER_GRACE_S="2",
        )
        env.update(self.extra_env)
        return env

    def crews_process(self, *args: str, ready: str) -> ServerProcess:
        """A ``crews`` command (not started yet) with the stack's environment."""
        return ServerProcess(args[0], [CREWS, *args], ready, 0, env=self.env(), cwd=str(ROOT))

    def coordinator(self) -> ServerProcess:
        proc = self.crews_process("coordinator", ready="coordinator ready")
        proc.start()
        self.crews_procs.setdefault("coordinator", []).append(proc)
        return proc

    def workers(self, crew: str, roles: Iterable[str], per_role: int) -> list[ServerProcess]:
        """``per_role`` workers of each role, started at the same time; returns once all are ready."""
        procs = [
            self.crews_process("role", f"{crew}/{role}", ready=f"role {crew}/{role} ready")
            for role in roles
            for _ in range(per_role)
        ]
        with ThreadPoolExecutor(max_workers=len(procs)) as pool:
            list(pool.map(ServerProcess.start, procs))
        self.crews_procs.setdefault("workers", []).extend(procs)
        return procs

    def pids(self) -> dict[str, list[int]]:
        """Process ids by part: each server, the coordinator, the workers, and this process (the driver)."""
        groups = {name: [server] for name, server in self.servers.items()} | self.crews_procs
        found = {name: [p.proc.pid for p in procs if p.proc is not None] for name, procs in groups.items()}
        return found | {"driver": [os.getpid()]}

    def stop_crews(self) -> None:
        """Stop the coordinator and the workers (SIGTERM), all at once."""
        procs = [p for group in self.crews_procs.values() for p in group]
        if procs:
            with ThreadPoolExecutor(max_workers=len(procs)) as pool:
                list(pool.map(lambda p: p.stop(timeout=10), procs))
        self.crews_procs.clear()

    def close(self) -> None:
        self.stop_crews()
        for server in self.servers.values():
            server.kill()
        self.servers.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)

    @asynccontextmanager
    async def clients(self) -> AsyncIterator[Clients]:
        """A NATS connection and a job store on this stack, as the API holds them."""
        nc = await nats.connect(self.nats_url, name="crews-bench")
        store = RedisJobStore(redis_client(RedisSettings(redis_url=self.redis_url)))
        try:
            yield Clients(nc, nc.jetstream(), store)
        finally:
            await store.aclose()
            await nc.drain()
