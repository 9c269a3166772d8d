"""A scripted OpenAI-compatible LLM server, over real HTTP, for tests and benchmarks.

It answers ``POST /v1/chat/completions`` from a ``Script`` (see
``inference.testing.script`` for the format) keyed by the ``X-Crews-Role`` and
``X-Crews-Step`` headers ``LLMPool`` sends, and lists its model at
``GET /v1/models``. ``POST /script`` replaces the script at run time (and
resets every position), ``GET /script`` shows it, ``GET /requests`` lists the
requests received since. ``GET /metrics`` is a Prometheus exposition with
vLLM's ``vllm:num_requests_waiting`` gauge, whose value ``POST /metrics``
(``{"num_requests_waiting": 12}``) or ``ScriptedServer.set_waiting`` sets, so
tests can make the server look overloaded.

In a test::

    async with ScriptedServer(Script.for_role("writer", "done")) as llm:
        pool = LLMPool(InferenceSettings(llm_urls=[llm.url]))

As a process (prints ``scripted LLM ready on http://127.0.0.1:N/v1``)::

    python -m inference.testing.server --script script.yaml --port N
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from inference.headers import JOB_HEADER, ROLE_HEADER, STEP_HEADER, decode
from inference.testing.script import (
    EchoReply,
    ErrorReply,
    JsonReply,
    RecordedRequest,
    Reply,
    Script,
    ScriptState,
    TextReply,
    ToolCallsReply,
    conversation_turn,
    count_words,
)

START_TIMEOUT_S = 10.0


class ChatRequest(BaseModel):
    """The part of an OpenAI chat completion request the scripted server reads."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[dict[str, Any]]
    stream: bool = False


class MetricsUpdate(BaseModel):
    """``POST /metrics``: the gauges to report from now on."""

    model_config = ConfigDict(extra="forbid")

    num_requests_waiting: float = Field(ge=0)


def _metrics(model: str, waiting: float) -> str:
    return (
        "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n"
        "# TYPE vllm:num_requests_waiting gauge\n"
        f'vllm:num_requests_waiting{{engine="0",model_name="{model}"}} {waiting!r}\n'
    )


def _error(status: int, message: str, retry_after: float | None = None) -> JSONResponse:
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
    body = {"error": {"message": message, "type": "scripted_error", "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            return str(content or "")
    return ""


def _filled(value: Any, fields: dict[str, str]) -> Any:
    """``value`` with ``{job}``, ``{role}``, ``{step}``, ``{turn}`` filled in its strings (nested too)."""
    if isinstance(value, str):
        for name, field in fields.items():
            value = value.replace("{" + name + "}", field)
        return value
    if isinstance(value, dict):
        return {key: _filled(item, fields) for key, item in value.items()}
    if isinstance(value, list):
        return [_filled(item, fields) for item in value]
    return value


def _message(reply: Reply, request: ChatRequest, seen: RecordedRequest, n: int) -> dict[str, Any]:
    if isinstance(reply, ToolCallsReply):
        fields = {
            "job": seen.job,
            "role": seen.role,
            "step": seen.step,
            "turn": str(conversation_turn(seen.body)),
        }
        calls = [
            {
                "id": call.id or f"call_{n}_{i}",
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(_filled(call.arguments, fields))},
            }
            for i, call in enumerate(reply.tool_calls)
        ]
        return {"role": "assistant", "content": reply.text, "tool_calls": calls}
    if isinstance(reply, TextReply):
        content = reply.text
    elif isinstance(reply, JsonReply):
        content = json.dumps(reply.data)
    else:
        assert isinstance(reply, EchoReply)
        content = reply.echo
        fields = {
            "input": _last_user_text(request.messages),
            "role": seen.role,
            "step": seen.step,
            "job": seen.job,
        }
        for name, value in fields.items():
            content = content.replace("{" + name + "}", value)
    return {"role": "assistant", "content": content}


def _completion(message: dict[str, Any], request: ChatRequest, model: str, n: int) -> dict[str, Any]:
    calls = message.get("tool_calls") or []
    output = count_words(message.get("content")) + sum(
        count_words(f"{c['function']['name']} {c['function']['arguments']}") for c in calls
    )
    prompt = sum(count_words(m.get("content")) for m in request.messages)
    return {
        "id": f"chatcmpl-scripted-{n}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if calls else "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": prompt, "completion_tokens": output, "total_tokens": prompt + output},
    }


def create_app(state: ScriptState) -> FastAPI:
    """The scripted server's ASGI app, answering from ``state``."""
    app = FastAPI(title="crews scripted LLM", docs_url=None, redoc_url=None)
    counter = iter(range(1, sys.maxsize))

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        model = state.script.model
        return {
            "object": "list",
            "data": [{"id": model, "object": "model", "created": 0, "owned_by": "crews"}],
        }

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(request: ChatRequest, http: Request) -> dict[str, Any] | JSONResponse:
        served = state.script.model
        if request.model != served:
            return _error(404, f"The model `{request.model}` does not exist; this server serves `{served}`.")
        if request.stream:
            return _error(400, "the scripted server does not stream: call without stream=True")
        seen = RecordedRequest(
            job=decode(http.headers.get(JOB_HEADER)),
            role=decode(http.headers.get(ROLE_HEADER)),
            step=decode(http.headers.get(STEP_HEADER)),
            traceparent=http.headers.get("traceparent"),
            authorization=http.headers.get("authorization"),
            body=request.model_dump(),
        )
        reply, latency = state.next_reply(seen)
        if latency:
            await asyncio.sleep(latency)  # the scripted model's "thinking" time
        if isinstance(reply, ErrorReply):
            return _error(reply.error, reply.message, reply.retry_after)
        n = next(counter)
        return _completion(_message(reply, request, seen, n), request, served, n)

    @app.get("/script")
    async def get_script() -> dict[str, Any]:
        return state.script.model_dump(by_alias=True, exclude_defaults=True)

    @app.post("/script")
    async def set_script(script: Script) -> dict[str, Any]:
        state.replace(script)
        return {"ok": True, "rules": len(script.rules)}

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> str:
        return _metrics(state.script.model, state.waiting)

    @app.post("/metrics")
    async def set_metrics(update: MetricsUpdate) -> dict[str, Any]:
        state.set_waiting(update.num_requests_waiting)
        return {"ok": True}

    @app.get("/requests")
    async def requests() -> list[RecordedRequest]:
        return state.requests()

    return app


class _Server(uvicorn.Server):
    """uvicorn that calls back once it listens (no polling for readiness)."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._on_started()


def _listen(host: str, port: int) -> socket.socket:
    # With proto=IPPROTO_TCP asyncio sets TCP_NODELAY on accepted connections; without it every
    # keep-alive reply waited for a delayed ACK (46 ms per call instead of 3 ms, bench/FINDINGS.md).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class ScriptedServer:
    """The scripted server on ``host`` (a free port by default), in a background thread.

    Use as ``with`` or ``async with``; ``url`` is the OpenAI base URL (``.../v1``).
    """

    def __init__(self, script: Script | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = ScriptState(script or Script())
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def set_script(self, script: Script) -> None:
        """Answer from ``script`` from now on (positions and the request log start again)."""
        self.state.replace(script)

    def set_waiting(self, waiting: float) -> None:
        """Report ``waiting`` as ``vllm:num_requests_waiting`` at ``/metrics`` from now on."""
        self.state.set_waiting(waiting)

    def requests(self) -> list[RecordedRequest]:
        """The requests received since the script was last set."""
        return self.state.requests()

    async def wait_for_requests(self, count: int, within: float = 30.0) -> None:
        """Return once ``count`` requests have arrived; ``TimeoutError`` after ``within`` seconds."""
        if not await asyncio.to_thread(self.state.wait_for_requests, count, within):
            raise TimeoutError(f"{len(self.requests())} of {count} requests arrived in {within} s")

    def start(self) -> None:
        sock = _listen(self.host, self.port)
        self.port = int(sock.getsockname()[1])
        started = threading.Event()
        config = uvicorn.Config(create_app(self.state), log_level="warning", access_log=False, lifespan="off")
        server = _Server(config, started.set)

        def run() -> None:
            try:
                server.run(sockets=[sock])
            finally:
                sock.close()
                started.set()

        self._server = server
        self._thread = threading.Thread(target=run, name=f"scripted-llm-{self.port}", daemon=True)
        self._thread.start()
        if not started.wait(START_TIMEOUT_S) or not server.started:
            self.stop()
            raise RuntimeError(f"the scripted LLM server did not start on {self.host}:{self.port}")

    def stop(self) -> None:
        """Stop now: requests still open (a killed worker's, a held reply) are cut, not waited for."""
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(START_TIMEOUT_S)
        self._server = self._thread = None

    def __enter__(self) -> ScriptedServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> ScriptedServer:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m inference.testing.server", description="scripted OpenAI-compatible LLM"
    )
    parser.add_argument("--script", type=Path, help="YAML or JSON script (default: echo every request)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    args = parser.parse_args(argv)
    try:
        script = Script.from_file(args.script) if args.script else Script()
    except ValueError as exc:
        parser.exit(2, f"{exc}\n")
    sock = _listen(args.host, args.port)
    port = sock.getsockname()[1]

    def ready() -> None:
        sys.stdout.write(f"scripted LLM ready on http://{args.host}:{port}/v1\n")
        sys.stdout.flush()

    config = uvicorn.Config(
        create_app(ScriptState(script)), log_level="warning", access_log=False, lifespan="off"
    )
    _Server(config, ready).run(sockets=[sock])


if __name__ == "__main__":
    main()
