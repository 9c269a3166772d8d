"""``crews up`` supervises what it started: a process that dies comes back (and ``crews status`` says so);
Ctrl-C stops every process it started, also in the middle of a scale-up."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from crews.jobs.store import RedisJobStore, StackProcess
from crews.local.servers import ServerProcess
from crews.local.settings import StackSettings
from crews.local.up import StackInfo, read_stack_info
from crews.spec.load import load_crew_text
from tests.child_env import child_env
from tests.e2e.stack import ROOT, stack_ports
from tests.waits import eventually

CREWS = str(Path(sys.executable).with_name("crews"))


def crew(workers: int) -> str:
    return f"""
name: big
roles:
  w: {{role: Worker, goal: Work, scaling: {{min: {workers}, max: {workers}}}}}
tasks:
  t: {{description: Work., expected_output: Done., agent: w}}
"""


def up_env(home: Path) -> dict[str, str]:
    env = child_env("CREWS_", "OTEL_")
    env.update(
        CREWS_HOME=str(home), CREWS_LOCAL_LLM="scripted", CREWS_SCALE_POLL_S="0.3", PYTHONUNBUFFERED="1",
        COLUMNS="200", **stack_ports(),
    )  # fmt: skip
    return env


def processes_of(home: Path) -> list[int]:
    """Every live process started with this stack's CREWS_HOME in its environment (they all inherit it)."""
    marker = f"CREWS_HOME={home}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if marker in environ.split(b"\0") and state != "Z":
            found.append(int(entry.name))
    return found


@pytest.fixture
async def up(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    proc = ServerProcess(
        "crews up", [CREWS, "up"], "starting coordinator", 0, env=up_env(tmp_path), cwd=str(ROOT)
    )
    proc.ready_timeout_s = 60
    proc.start()
    try:
        yield proc
    finally:
        proc.stop(signal.SIGINT, timeout=120)
        print(proc.log_tail)


async def stack_info(home: Path) -> StackInfo:
    """What the stack wrote to ``stack.json`` (its URLs), once it has."""
    return await eventually(_info(StackSettings(home=home)), 60, "stack.json")


@asynccontextmanager
async def stack_store(home: Path) -> AsyncIterator[RedisJobStore]:
    """The stack's job store, closed even when the test fails (else its socket warns in the next test)."""
    store = RedisJobStore.from_url((await stack_info(home)).redis_url)
    try:
        yield store
    finally:
        await store.aclose()


def _info(settings: StackSettings):  # type: ignore[no-untyped-def]
    async def read() -> StackInfo | None:
        return read_stack_info(settings)

    return read


async def register(store: RedisJobStore, text: str) -> None:
    spec = load_crew_text(text, "big.yaml")
    await store.save_crew(spec)


async def test_ctrl_c_in_the_middle_of_a_scale_up_leaves_no_process(
    up: ServerProcess, tmp_path: Path
) -> None:
    async with stack_store(tmp_path) as store:
        await register(store, crew(50))
        mark = up.mark()
        up.wait_for_line("worker up: big/w (3)", 120, after=mark)  # 47 more to come
    assert len(processes_of(tmp_path)) >= 6  # servers, LLM, API, coordinator, workers

    up.stop(signal.SIGINT, timeout=120)

    assert up.proc is not None and up.proc.returncode == 0, up.log_tail
    assert processes_of(tmp_path) == []


async def test_a_process_that_dies_is_restarted_and_crews_status_shows_it(
    up: ServerProcess, tmp_path: Path
) -> None:
    async with stack_store(tmp_path) as store:
        await register(store, crew(1))
        up.wait_for_line("worker up: big/w (1)", 120)

        async def running() -> dict[str, StackProcess] | None:
            now = {p.name: p for p in await store.stack_processes()}
            return now if "role big/w" in now and now["role big/w"].pids else None

        before = await eventually(running, 30, "the worker is published")
        for name in ("coordinator", "role big/w", "nats-server"):
            mark = up.mark()
            os.kill(before[name].pids[0], signal.SIGKILL)
            up.wait_for_line(f"{name} restarted", 60, after=mark)

        async def restarted() -> dict[str, StackProcess] | None:
            now = {p.name: p for p in await store.stack_processes()}
            names = ("coordinator", "role big/w", "nats-server")
            return now if all(n in now and now[n].restarts == 1 and now[n].pids for n in names) else None

        after = await eventually(restarted, 60, "the restarts are published")
        assert after["coordinator"].pids != before["coordinator"].pids
        assert after["api"].restarts == 0
    argv = [CREWS, "status"]
    status = await asyncio.to_thread(
        subprocess.run, argv, env=up_env(tmp_path), capture_output=True, text=True, timeout=60, check=False
    )
    assert status.returncode == 0, status.stderr
    line = next(line for line in status.stdout.splitlines() if "coordinator" in line)
    assert line.split("│")[4].strip() == "1"  # restarts
