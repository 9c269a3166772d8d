"""The benchmarks' LLM: the scripted server's app in its own process, with a fixed latency and a slot limit.

``python -m bench.llm_server --latency 0.2 --concurrency 8`` answers every chat
completion with a fixed text after ``latency`` seconds, serving at most
``concurrency`` requests at once (the others wait, as on a vLLM server with
``max_num_seqs`` slots); ``--concurrency 0`` means no limit. It prints
``bench LLM ready on <base url>`` once it listens.

It runs ``inference.testing.server.create_app`` unchanged, but on a listening socket
made with ``IPPROTO_TCP``: asyncio sets ``TCP_NODELAY`` only on such sockets,
and without it a keep-alive response waits ~40 ms for a delayed ACK between
its headers and its body (see bench/RESULTS.md, "Findings").
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn

from inference.testing.script import Script, ScriptState
from inference.testing.server import create_app

READY = "bench LLM ready on"
REPLY = "Thought: done. Final answer: three facts, one paragraph, approved."

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class SlotLimit:
    """ASGI middleware: at most ``slots`` HTTP requests inside ``app`` at once (0: unlimited)."""

    def __init__(self, app: ASGIApp, slots: int) -> None:
        self.app, self.slots = app, slots
        self._sem: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.slots <= 0 or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.slots)
        async with self._sem:
            await self.app(scope, receive, send)


def bench_script(latency_s: float) -> Script:
    """Every request gets the same short text after ``latency_s``."""
    return Script.model_validate({"latency_s": latency_s, "default": [REPLY]})


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket whose accepted connections asyncio marks ``TCP_NODELAY``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, url: str) -> None:
        super().__init__(config)
        self._url = url

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            sys.stdout.write(f"{READY} {self._url}\n")
            sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.llm_server", description=__doc__)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each reply")
    parser.add_argument("--concurrency", type=int, default=0, help="requests served at once (0: no limit)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    sock = listen(args.host, args.port)
    url = f"http://{args.host}:{sock.getsockname()[1]}/v1"
    app = SlotLimit(create_app(ScriptState(bench_script(args.latency), keep_requests=1)), args.concurrency)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    _Server(config, url).run(sockets=[sock])


if __name__ == "__main__":
    main()
