"""``crews up``: the whole stack on one machine, every part a real process.

NATS and a Redis-compatible server from the installed binaries (unless
``CREWS_NATS_URL`` / ``CREWS_REDIS_URL`` are set), the local LLM pool (a real
vLLM, unless ``CREWS_LLM_URLS`` is set), the API, a coordinator, and workers
for every role of every registered crew, scaled on queue depth. Stopping
stops everything it started, in reverse order, by process group — also a
worker still starting. The Redis-compatible server keeps an append-only file
(fsync on every write) and NATS its JetStream store under ``home``, so a
server that is restarted loses nothing.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from crews.errors import LocalStackError
from crews.local.servers import ServerProcess, nats_server, port_or_free, redis_server
from crews.spec.models import CrewSpec

if TYPE_CHECKING:
    from inference.local.vllm import LocalVLLM

Progress = Callable[[str], None]
CREWS = str(Path(sys.executable).with_name("crews"))


class LocalStack:
    """Starts and stops the local stack's processes; ``env`` is what its children see."""

    def __init__(self, home: Path, *, api_host: str, api_port: int, progress: Progress) -> None:
        self.home, self.api_host, self.progress = home, api_host, progress
        self.api_port = port_or_free(api_port)
        self.env: dict[str, str] = dict(os.environ, PYTHONUNBUFFERED="1")
        self.services: list[ServerProcess] = []
        self.workers: dict[str, list[ServerProcess]] = {}
        self.starting: set[ServerProcess] = set()
        self.stopping = False
        self._lock = threading.Lock()
        self.engines: dict[str, str] = {}
        """``crew/role`` → its engine: a crewai role's workers run from the CrewAI venv."""
        self._llm: LocalVLLM | None = None

    @property
    def api_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"

    def start_servers(self, nats_port: int, redis_port: int) -> None:
        """NATS and Redis from the installed binaries, unless URLs are configured."""
        self.home.mkdir(parents=True, exist_ok=True)
        if "CREWS_NATS_URL" not in os.environ:
            port = self._start(nats_server(self.home / "nats", port_or_free(nats_port)))
            self.env["CREWS_NATS_URL"] = f"nats://127.0.0.1:{port}"
        if "CREWS_REDIS_URL" not in os.environ:
            port = self._start(redis_server(self.home / "redis", port_or_free(redis_port)))
            self.env["CREWS_REDIS_URL"] = f"redis://127.0.0.1:{port}/0"

    def start_llm(self, mode: str, port: int) -> None:
        """The local LLM pool, unless ``CREWS_LLM_URLS`` points at one."""
        if "CREWS_LLM_URLS" in os.environ:
            return
        if mode == "scripted":
            port = port_or_free(port)
            argv = [sys.executable, "-m", "inference.testing.server", "--port", str(port)]
            self._start(ServerProcess("scripted LLM", argv, "scripted LLM ready", port, env=self.env))
            self.env["CREWS_LLM_URLS"] = f"http://127.0.0.1:{port}/v1"
            return
        from inference.local.vllm import LocalVLLM, ensure_installed

        self.progress("installing the local vLLM and model (first run only, about 2 minutes)…")
        install = ensure_installed(progress=self.progress)
        self.progress("starting vLLM on the CPU (about 30 s)…")
        llm = LocalVLLM(install, port=port_or_free(port))
        llm.start()
        self._llm = llm
        self.env["CREWS_LLM_URLS"] = llm.url

    def start_services(self) -> None:
        """The API and a coordinator."""
        self.env.update(CREWS_API_HOST=self.api_host, CREWS_API_PORT=str(self.api_port))
        self.env["CREWS_API_URL"] = self.api_url
        self._start(ServerProcess("api", [CREWS, "api"], "api ready", self.api_port, env=self.env))
        self._start(
            ServerProcess("coordinator", [CREWS, "coordinator"], "coordinator ready", 0, env=self.env)
        )

    def note_engines(self, spec: CrewSpec) -> None:
        """Remember which engine each role of ``spec`` runs on (for the environment of its workers)."""
        for key, role in spec.all_roles().items():
            self.engines[f"{spec.name}/{key}"] = role.engine

    async def start_worker(self, crew: str, role: str) -> None:
        """One more worker of ``crew/role``; a stop meanwhile aborts it (``LocalStackError``)."""
        name = f"{crew}/{role}"
        crews = await asyncio.to_thread(self._crews_for, name)
        proc = ServerProcess(f"role {name}", [crews, "role", name], f"role {name} ready", 0, env=self.env)
        proc.log_file = self._log_file(proc.name)
        self._register(proc)  # stop() sees it from now on, before its process exists
        try:
            await asyncio.to_thread(proc.start)
        finally:
            self.starting.discard(proc)
        self.workers.setdefault(name, []).append(proc)
        self.progress(f"worker up: {name} ({len(self.workers[name])})")

    async def stop_worker(self, crew: str, role: str) -> None:
        name = f"{crew}/{role}"
        proc = self.workers[name].pop()
        await asyncio.to_thread(proc.close)
        self.progress(f"worker down: {name} ({len(self.workers[name])})")

    def _crews_for(self, name: str) -> str:
        """The ``crews`` whose environment runs the role's engine (the CrewAI venv's, made on first use)."""
        if self.engines.get(name) != "crewai":
            return CREWS
        from crews.local import crewai_env

        if not crewai_env.venv_dir().exists():
            self.progress(
                "installing crews with CrewAI in its own venv (first crewai role only, ~2 minutes)…"
            )
        return str(crewai_env.ensure(log=False))

    def processes(self) -> list[ServerProcess]:
        """Every process the stack runs (not those still starting): what the supervisor watches."""
        return [*self.services, *(proc for procs in self.workers.values() for proc in procs)]

    def _register(self, proc: ServerProcess) -> None:
        with self._lock:
            if self.stopping:
                raise LocalStackError(f"{proc.name} not started: the stack is stopping")
            self.starting.add(proc)

    def begin_stop(self) -> list[ServerProcess]:
        """Refuse new processes from now on; every process to stop, workers first, servers last."""
        with self._lock:
            self.stopping = True
            workers = [p for procs in self.workers.values() for p in reversed(procs)]
            starting = [p for p in self.starting if p not in self.services]
            return [*starting, *workers, *reversed(self.services)]

    def stop(self, procs: list[ServerProcess] | None = None) -> None:
        """Stop workers (also those still starting), then services, then the LLM and the servers."""
        procs = self.begin_stop() if procs is None else procs
        services = [p for p in procs if p in self.services]  # last, one by one: servers after their users
        workers = [p for p in procs if p not in self.services]
        with ThreadPoolExecutor(max_workers=max(1, min(16, len(workers)))) as pool:
            list(pool.map(lambda proc: proc.close(timeout=10), workers))
        for proc in services:
            proc.close()
        if self._llm is not None:
            self._llm.stop()

    def _log_file(self, name: str) -> Path:
        logs = self.home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        return logs / f"{name.replace('/', '.').replace(' ', '-')}.log"

    def _start(self, proc: ServerProcess) -> int:
        proc.log_file = self._log_file(proc.name)
        self.progress(f"starting {proc.name}… (log: {proc.log_file})")
        self._register(proc)
        try:
            proc.start()
        except LocalStackError:
            self.starting.discard(proc)
            self.stop()
            raise
        with self._lock:
            self.services.append(proc)
            self.starting.discard(proc)
        return proc.port
