"""4. Cold start and memory of a native role worker: ``crews role <crew>/<role>`` from exec to its ready line.

Ready means connected to NATS, streams and the role's consumer in place, and
fetching (the worker's own ready line). RSS is read twice: at the ready line,
and ``settle_s`` later, once the worker has loaded what steps need (LLM
client, Redis client) in the background, which is what it holds when it
works. The interpreter's own start (``python -c pass``) is measured the same
way, as the floor. The first start is a warm-up (it may write ``.pyc`` files).
"""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time
from dataclasses import dataclass

from bench.procs import rss_bytes
from bench.stack import CREWS, ROOT, BenchStack
from bench.stats import median

MB = 1024 * 1024


@dataclass
class ColdStart:
    runs: int
    ready_s: float
    ready_s_max: float
    rss_ready_mb: float
    rss_working_mb: float
    python_start_s: float
    engine: str = "native"


def _wait_for_line(proc: subprocess.Popen[bytes], text: bytes, timeout_s: float) -> bool:
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not selector.select(deadline - time.monotonic()):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                return False
            seen += chunk
            if text in seen:
                return True
    return False


def start_once(argv: list[str], ready: bytes, env: dict[str, str], settle_s: float) -> tuple[float, int, int]:
    """(seconds to the ready line, RSS at it, RSS ``settle_s`` later) of one start of ``argv``."""
    begin = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    try:
        if not _wait_for_line(proc, ready, 30.0):
            raise RuntimeError(f"{' '.join(argv)} did not print {ready!r} within 30 s")
        elapsed = time.perf_counter() - begin
        at_ready = rss_bytes(proc.pid)
        time.sleep(settle_s)
        return elapsed, at_ready, rss_bytes(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


def python_start_s(runs: int) -> float:
    times = []
    for _ in range(runs):
        begin = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - begin)
    return median(times)


def run(runs: int, settle_s: float = 2.0) -> ColdStart:
    stack = BenchStack().start()
    try:
        env = stack.env()
        argv = [CREWS, "role", "coldstart/worker"]
        ready = b"role coldstart/worker ready"
        start_once(argv, ready, env, 0.0)  # warm-up
        samples = [start_once(argv, ready, env, settle_s) for _ in range(runs)]
    finally:
        stack.close()
    return ColdStart(
        runs=runs,
        ready_s=median([s[0] for s in samples]),
        ready_s_max=max(s[0] for s in samples),
        rss_ready_mb=median([s[1] / MB for s in samples]),
        rss_working_mb=median([s[2] / MB for s in samples]),
        python_start_s=python_start_s(runs),
    )
