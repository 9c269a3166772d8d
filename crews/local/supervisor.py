"""The local stack's supervisor: a process that dies is started again, with back-off, and counted.

Every process ``crews up`` started (servers, API, coordinator, workers) is
watched; one that exited without being asked to (``ServerProcess.close``) is
restarted on the same command, port and store, after 0.5 s, then 1, 2, 4 …
up to ``max_backoff_s`` while it keeps dying. Restarts per process name are
published with the worker counts, and ``crews status`` shows them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from crews.errors import LocalStackError
from crews.local.servers import ServerProcess

log = logging.getLogger(__name__)
Progress = Callable[[str], None]


STABLE_S = 10.0  # a process that ran this long before dying is restarted after the shortest back-off


@dataclass
class _Watch:
    restarts: int = 0
    backoff_s: float = 0.0
    due: float = 0.0
    started_at: float = 0.0


@dataclass
class Supervisor:
    """Restarts dead processes of ``processes()`` until stopped."""

    processes: Callable[[], Iterable[ServerProcess]]
    progress: Progress
    max_backoff_s: float = 30.0
    restarts: dict[str, int] = field(default_factory=dict)
    _watches: dict[int, _Watch] = field(default_factory=dict)

    async def run(self, stop: asyncio.Event, poll_s: float = 0.5) -> None:
        """Check every ``poll_s`` until ``stop``; a restart runs in a thread (it waits for the ready line)."""
        while not stop.is_set():
            for proc in list(self.processes()):
                if stop.is_set():
                    return
                await self._check(proc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll_s)

    async def _check(self, proc: ServerProcess) -> None:
        if proc.running or proc.closed or proc.proc is None:
            return
        watch = self._watches.setdefault(id(proc), _Watch())
        now = time.monotonic()
        if watch.due == 0.0:
            crash_loop = watch.started_at and now - watch.started_at < STABLE_S
            watch.backoff_s = min(watch.backoff_s * 2, self.max_backoff_s) if crash_loop else 0.5
            watch.due = now + watch.backoff_s
            code = proc.proc.returncode
            self.progress(f"{proc.name} exited (code {code}): restarting in {watch.backoff_s:g} s")
        if now < watch.due:
            return
        watch.restarts += 1
        self.restarts[proc.name] = self.restarts.get(proc.name, 0) + 1
        try:
            await asyncio.to_thread(proc.start)
        except LocalStackError as exc:
            watch.backoff_s = min(watch.backoff_s * 2, self.max_backoff_s)
            watch.due = time.monotonic() + watch.backoff_s
            log.warning("restart of %s failed, next try in %g s: %s", proc.name, watch.backoff_s, exc)
            return
        self.progress(f"{proc.name} restarted (restart {watch.restarts}, pid {proc.pid})")
        watch.due, watch.started_at = 0.0, time.monotonic()
