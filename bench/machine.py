"""A description of the machine and the code a benchmark ran on."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
from pathlib import Path

from crews.local.servers import nats_server_binary, redis_server_binary

ROOT = Path(__file__).resolve().parents[1]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return float("nan")


def _output(argv: list[str]) -> str:
    try:
        run = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False, cwd=ROOT)
    except OSError:
        return "unknown"
    return (run.stdout or run.stderr).strip().splitlines()[0] if (run.stdout or run.stderr) else "unknown"


def describe() -> dict[str, str | int | float]:
    """CPU, cores, memory, OS, Python, servers, commit, date and load when the run started."""
    dirty = _output(["git", "status", "--porcelain", "--untracked-files=no"]) != "unknown"
    load = os.getloadavg()
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count() or 0,
        "cores_usable": len(os.sched_getaffinity(0)),
        "memory_gib": round(_memory_gib(), 1),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "nats_server": _output([nats_server_binary(), "--version"]),
        "redis_server": _output([redis_server_binary(), "--version"]),
        "commit": _output(["git", "rev-parse", "--short", "HEAD"])
        + (" (with local changes)" if dirty else ""),
        "load_at_start": f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
    }
