"""Helpers for bus tests: worker processes and waiting on NATS subjects."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

ROOT = Path(__file__).resolve().parents[2]


def start_worker(
    nats_url: str, redis_url: str, stream: str, consumer: str, name: str
) -> subprocess.Popen[str]:
    """Start ``tests.bus.worker_proc`` and wait for its ready line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.bus.worker_proc", nats_url, redis_url, stream, consumer, name],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "worker ready", f"worker {name} did not start: {line!r}"
    return proc


def stop_worker(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


async def next_message(nc: NATS, subject: str, timeout: float = 20.0) -> Msg:
    """Subscribe to ``subject`` and return its first message (or fail after ``timeout``)."""
    sub = await nc.subscribe(subject, max_msgs=1)
    try:
        return await sub.next_msg(timeout=timeout)
    finally:
        await sub.unsubscribe()
