"""Install steps from nothing: interrupted installs are redone, concurrent ones run once, failures read well.

The installs here are real processes running ``inference.local.install`` on a
small step (a command that writes into the step's folder); the interrupted one
is SIGKILLed while its command runs, the concurrent ones really wait on the
lock (seen in ``/proc/locks``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from inference.local.install import MARKER, InstallError, Step, ensure, is_complete

ROOT = Path(__file__).resolve().parents[2]

# A child that installs ``target`` through ``ensure``: its build writes "started", waits for a "go"
# file when asked to, then fills the folder and counts the build in ``builds``.
CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from inference.local.install import ensure

    target, builds, wait_for = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]

    def build(step):
        step.target.mkdir()
        (step.target / "half").write_text("half")
        with builds.open("a") as out:
            out.write("started\\n")
        if wait_for:
            step.run([sys.executable, "-c",
                      f"import pathlib, time\\nwhile not pathlib.Path({wait_for!r}).exists(): time.sleep(0.01)"],
                     "waiting for go")
        (step.target / "whole").write_text("whole")
        with builds.open("a") as out:
            out.write("built\\n")

    ensure(target, "v1", build, what="test step", progress=lambda message: None)
    """
)


def _start(target: Path, builds: Path, wait_for: Path | None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(target), str(builds), str(wait_for or "")],
        cwd=ROOT,
        start_new_session=True,
    )


def _wait_until(condition: object, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def _builds(builds: Path) -> list[str]:
    return builds.read_text().split() if builds.exists() else []


def test_an_install_killed_half_way_is_redone_on_the_next_run(tmp_path: Path) -> None:
    target, builds, go = tmp_path / "thing", tmp_path / "builds", tmp_path / "go"
    child = _start(target, builds, go)
    _wait_until(lambda: _builds(builds) == ["started"])
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    assert (target / "half").exists() and not is_complete(target, "v1")

    go.touch()
    child = _start(target, builds, None)
    assert child.wait() == 0
    assert _builds(builds) == ["started", "started", "built"]
    assert is_complete(target, "v1") and (target / "whole").exists()


def _blocked_on_a_lock(pid: int) -> bool:
    """Whether ``pid`` is waiting for a flock (``/proc/locks`` lists waiters with ``->``)."""
    return any(
        line.split()[1] == "->" and line.split()[5] == str(pid)
        for line in Path("/proc/locks").read_text().splitlines()
        if len(line.split()) > 5
    )


def test_two_installs_started_at_once_build_once_and_both_succeed(tmp_path: Path) -> None:
    target, builds, go = tmp_path / "thing", tmp_path / "builds", tmp_path / "go"
    first = _start(target, builds, go)
    _wait_until(lambda: _builds(builds) == ["started"])
    second = _start(target, builds, go)
    _wait_until(lambda: _blocked_on_a_lock(second.pid))
    go.touch()
    assert first.wait(60) == 0 and second.wait(60) == 0
    assert _builds(builds) == ["started", "built"]
    assert is_complete(target, "v1") and (target / "whole").read_text() == "whole"


def test_another_stamp_redoes_the_install(tmp_path: Path) -> None:
    made: list[str] = []

    def build(step: Step) -> None:
        step.target.mkdir()
        made.append(step.target.name)

    assert ensure(tmp_path / "x", "v1", build, what="x", progress=lambda _: None)
    assert not ensure(tmp_path / "x", "v1", build, what="x", progress=lambda _: None)
    assert ensure(tmp_path / "x", "v2", build, what="x", progress=lambda _: None)
    assert made == ["x", "x"] and (tmp_path / "x" / MARKER).read_text() == "v2"


def test_a_failed_step_says_what_failed_shows_the_log_and_what_to_do(tmp_path: Path) -> None:
    def build(step: Step) -> None:
        step.run(
            [sys.executable, "-c", "print('resolving thing'); raise SystemExit('no such package: thing')"],
            "pip install thing",
            "Point the index at a mirror that has it.",
        )

    with pytest.raises(InstallError) as failed:
        ensure(tmp_path / "x", "v1", build, what="x", progress=lambda _: None)
    message = str(failed.value)
    assert message.startswith("pip install thing failed (exit 1).")
    assert "resolving thing" in message and "no such package: thing" in message
    assert message.endswith("Point the index at a mirror that has it.")
    assert not is_complete(tmp_path / "x", "v1")


def test_the_command_line_prints_one_paragraph_and_no_traceback(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    result = subprocess.run(
        [sys.executable, "-m", "inference.local.install", "venv", str(venv), "--stamp", "s", "--",
         "--no-index", "crews-no-such-package-anywhere"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "error: the project's venv: pip install failed (exit 1)" in result.stderr
    assert "crews-no-such-package-anywhere" in result.stderr
    assert "run it again" in result.stderr
    assert not is_complete(venv, "s")
