"""Session servers for tests: real nats-server (JetStream) and a real Redis-compatible server.

Each runs on a free port, from the installed binaries, and can be SIGKILLed and
restarted on the same store. ``--nats-url`` / ``--redis-url`` point at servers
already running instead (then kill/restart fixtures are unavailable).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from crews.local.servers import ServerProcess, nats_server, redis_server


@dataclass
class ManagedServer:
    """A server the tests own: its URL stays the same across restarts."""

    url: str
    process: ServerProcess | None

    def kill(self) -> None:
        assert self.process is not None, "server is external (--nats-url/--redis-url): cannot kill it"
        self.process.kill()

    def restart(self) -> None:
        """Start again on the same port and store (after kill or stop)."""
        assert self.process is not None, "server is external: cannot restart it"
        self.process.kill()
        self.process.start()


@contextmanager
def managed_nats(tmp: Path, external_url: str | None) -> Iterator[ManagedServer]:
    if external_url:
        yield ManagedServer(external_url, None)
        return
    proc = nats_server(tmp / "jetstream")
    proc.start()
    try:
        yield ManagedServer(f"nats://127.0.0.1:{proc.port}", proc)
    finally:
        proc.kill()


@contextmanager
def managed_redis(tmp: Path, external_url: str | None) -> Iterator[ManagedServer]:
    if external_url:
        yield ManagedServer(external_url, None)
        return
    proc = redis_server(tmp / "redis")
    proc.start()
    try:
        yield ManagedServer(f"redis://127.0.0.1:{proc.port}/0", proc)
    finally:
        proc.kill()
