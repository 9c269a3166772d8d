"""``crews role <crew>/<role>`` as a real process: its ready line, a step end to end, SIGTERM; light imports."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis.asyncio as aioredis
from a2a.types import TaskState
from nats.aio.client import Client as NATS

from inference.testing.script import Script
from inference.testing.server import ScriptedServer
from roles.step.results import StepResult
from tests.child_env import child_env
from tests.roles.helpers import make_work, new_job, run_step, states
from tests.servers import ManagedServer

ROOT = Path(__file__).resolve().parents[2]
CREWS = str(Path(sys.executable).with_name("crews"))
READY_BOUND_S = 30.0  # generous: readiness speed is benchmarked in bench/, not asserted here
HEAVY = ("openai", "crewai", "google.adk", "vllm", "fastapi", "uvicorn", "litellm")


def worker_env(nats_url: str, redis_url: str, llm_url: str) -> dict[str, str]:
    env = child_env()
    env.update(
        CREWS_NATS_URL=nats_url,
        CREWS_REDIS_URL=redis_url,
        CREWS_LLM_URLS=llm_url,
        CREWS_LLM_MAX_RETRIES="0",
        PYTHONUNBUFFERED="1",
    )
    return env


async def test_worker_process_prints_ready_runs_a_step_and_stops_on_sigterm(
    nats_server: ManagedServer,
    redis_server: ManagedServer,
    nc: NATS,
    redis_client: aioredis.Redis,
    llm: ScriptedServer,
) -> None:
    llm.set_script(Script.model_validate({"rules": [{"role": "writer", "replies": ["from the process"]}]}))
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        CREWS,
        "role",
        "demo/writer",
        env=worker_env(nats_server.url, redis_server.url, llm.url),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), READY_BOUND_S)
        ready_after = time.monotonic() - started
        assert line.decode() == "role demo/writer ready\n", f"after {ready_after:.2f} s: {line!r}"

        work = make_work(new_job(), "remote")
        events = await run_step(nc.jetstream(), work)
        assert states(events) == [TaskState.TASK_STATE_WORKING, TaskState.TASK_STATE_COMPLETED]
        raw = await redis_client.hget(work.keys.results, "remote")
        result = StepResult.model_validate_json(raw)
        assert (result.output, result.worker) == ("from the process", f"{socket.gethostname()}-{proc.pid}")

        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def loaded(modules: str, prefixes: tuple[str, ...]) -> list[str]:
    """Modules starting with ``prefixes`` that importing ``modules`` loads, in a fresh interpreter."""
    code = f"import json, sys, {modules}\nprint(json.dumps(sorted(m for m in sys.modules if m.startswith({prefixes!r}))))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    listed: list[str] = json.loads(out.stdout)
    return listed


def test_the_path_to_the_ready_line_loads_no_llm_client_redis_or_framework() -> None:
    assert loaded("crews.cli.main, roles.process", (*HEAVY, "redis", "roles.worker", "roles.engines")) == []


def test_the_path_to_the_ready_line_loads_no_http_client_a2a_types_yaml_or_crew_models() -> None:
    """nats-py would import aiohttp (bus.lazy_imports); the rest were imported for type hints only."""
    later = ("aiohttp", "a2a", "yaml", "crews.spec.models")
    assert loaded("crews.cli.main, roles.process", later) == []


def test_the_native_runtime_loads_no_framework() -> None:
    assert loaded("roles.worker, roles.engines.native", ("crewai", "google.adk", "vllm", "litellm")) == []
