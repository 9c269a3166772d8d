"""Serve the API with uvicorn in the running event loop: ``crews api`` and tests use the same server."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import signal
import socket
from collections.abc import Iterator
from types import TracebackType

import uvicorn
from fastapi import FastAPI

from bus.telemetry import setup_tracing
from crews.api.app import create_app
from crews.api.settings import ApiSettings
from crews.errors import CrewsError
from crews.spec.tools import ToolsSource


class ApiServerError(CrewsError):
    """The API server could not start (its log says why: NATS or Redis unreachable, port taken)."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name) is this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(app: FastAPI, host: str) -> None:
    """An API without keys serves loopback only: refuse to listen anywhere else."""
    if getattr(app.state, "open_access", False) and not is_loopback(host):
        raise ApiServerError(
            f"refusing to serve the API on {host} without API keys: anyone who can reach it could run "
            "crews. Set CREWS_API_KEYS (see the README's Security section), or listen on 127.0.0.1"
        )


class _Server(uvicorn.Server):
    """uvicorn that sets an event once it listens (no polling), and leaves signals to its owner.

    uvicorn's own handlers re-raise SIGTERM once it has shut down, which would
    end the process before it flushes its spans; :func:`serve` handles them.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def request_exit(self) -> None:
        """Stop gracefully; asked twice, stop now (open event streams are cut)."""
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.listening.set()


class ApiServer:
    """The API app on ``host:port`` (port 0: a free one), served by a task of the current event loop."""

    def __init__(
        self, app: FastAPI, *, host: str = "127.0.0.1", port: int = 0, access_log: bool = False
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.access_log = access_log
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        check_exposure(self.app, self.host)
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self.app, log_level="info", access_log=self.access_log, timeout_graceful_shutdown=5
        )
        self._server = server = _Server(config)
        self._task = asyncio.create_task(server.serve(sockets=[sock]))
        listening = asyncio.ensure_future(server.listening.wait())
        await asyncio.wait({self._task, listening}, return_when=asyncio.FIRST_COMPLETED)
        if not server.listening.is_set():
            listening.cancel()
            sock.close()
            raise ApiServerError(f"the API did not start on {self.url}: see the log above")

    def request_stop(self) -> None:
        """Begin a graceful stop (a second request cuts open connections); :meth:`wait` returns after it."""
        if self._server is not None:
            self._server.request_exit()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            await self._task
        self._server = self._task = None

    async def wait(self) -> None:
        """Until the server stops (SIGTERM or SIGINT)."""
        if self._task is not None:
            await self._task

    async def __aenter__(self) -> ApiServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


async def serve(settings: ApiSettings, tools: ToolsSource | None = None) -> None:
    """Run ``crews api`` until SIGTERM/SIGINT; prints ``api ready on <url>`` once it listens."""
    shutdown_tracing = setup_tracing("crews-api")
    server = ApiServer(
        create_app(settings, tools=tools), host=settings.api_host, port=settings.api_port, access_log=True
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.request_stop)
    try:
        await server.start()
        print(f"api ready on {server.url}", flush=True)  # noqa: T201 - the process's ready line
        await server.wait()
    finally:
        shutdown_tracing()
