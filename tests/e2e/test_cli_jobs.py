"""The job commands as a user runs them: `crews up` (scripted LLM), then run, submit, status, logs, cancel."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from crews.local.servers import ServerProcess
from tests.child_env import child_env
from tests.e2e.stack import CREWS, ROOT, stack_ports


@pytest.fixture
def stack_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """`crews up --llm scripted` on a fresh home; yields the environment the commands run with."""
    env = child_env()
    env.update(CREWS_HOME=str(tmp_path / "home"), PYTHONUNBUFFERED="1", COLUMNS="120", **stack_ports())
    up = ServerProcess(
        "crews up", [CREWS, "up", "--llm", "scripted"], "crews is up", 0, env=env, cwd=str(ROOT)
    )
    up.ready_timeout_s = 120
    up.start()
    try:
        yield env
    finally:
        up.stop(signal.SIGINT, timeout=60)
    assert up.proc is not None and up.proc.returncode == 0, up.log_tail


def crews(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CREWS, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_run_submit_status_logs_and_cancel(stack_env: dict[str, str]) -> None:
    run = crews(stack_env, "run", "examples/research.yaml", "-i", "topic=owls")
    assert run.returncode == 0, run.stderr
    for text in (
        "completed",
        "research — researcher",
        "write — writer",
        "result",
        "tokens and cost per role",
        "total",
    ):
        assert text in run.stdout, text
    assert "List three facts about owls." in run.stdout  # the scripted model echoes the task

    job = crews(stack_env, "submit", "research", "-i", "topic=bats").stdout.strip()
    assert len(job) == 20
    logs = crews(stack_env, "logs", "-f", job)
    assert logs.returncode == 0 and f"{job}  statusUpdate  completed" in logs.stdout
    status = crews(stack_env, "status", job)
    assert "completed" in status.stdout and "researcher" in status.stdout
    overview = crews(stack_env, "status")
    assert job in overview.stdout and "queue depth" in overview.stdout

    ended = crews(stack_env, "cancel", job)
    assert ended.returncode == 1 and "has already ended" in ended.stderr
    bad = crews(stack_env, "run", "examples/nope.yaml")
    assert bad.returncode == 1 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr
