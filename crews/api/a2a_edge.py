"""The HTTP edge of the crews' A2A endpoints: what a2a-sdk's routes would let through or answer wrongly.

- **Version.** A JSON-RPC call without ``A2A-Version`` is taken as 1.0, unless
  its method is a 0.3 name (``message/send``, ``tasks/get``, …: they have a
  ``/``), which is then served as 0.3 by the SDK's compatibility adapter. REST
  calls without the header are 1.0 (``CrewCallContextBuilder``).
- **Unknown enum values** (``ListTasks`` with ``status: "TASK_STATE_DONE"``,
  over JSON-RPC params, REST query or REST body) are refused with
  ``InvalidParamsError`` (-32602 / 400) instead of being dropped by the parser
  (``bus.a2a_nats.strict``).
- **REST cancel of an ended task** answers 409 Conflict (the spec's
  ``TaskNotCancelableError``), not the SDK's 400.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from a2a.server.request_handlers import build_error_response
from a2a.types import ListTasksRequest, SendMessageRequest, TaskState
from a2a.utils.constants import PROTOCOL_VERSION_0_3, PROTOCOL_VERSION_CURRENT, VERSION_HEADER
from a2a.utils.error_handlers import build_rest_error_payload
from a2a.utils.errors import InvalidParamsError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bus.a2a_nats.strict import unknown_enum_values

_JSONRPC_PARAMS: dict[str, Any] = {
    "SendMessage": SendMessageRequest.DESCRIPTOR,
    "SendStreamingMessage": SendMessageRequest.DESCRIPTOR,
    "ListTasks": ListTasksRequest.DESCRIPTOR,
}
_REST_BODIES: dict[str, Any] = {
    "/message:send": SendMessageRequest.DESCRIPTOR,
    "/message:stream": SendMessageRequest.DESCRIPTOR,
}
_VERSION = VERSION_HEADER.lower().encode()


class A2AEdge:
    """ASGI middleware of the ``/a2a`` mount (see the module docstring); bodies are small (``BodyLimit``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope["path"]).removeprefix(str(scope.get("root_path", "")))
        crew_path = path.strip("/").split("/", 1)
        rest = "/" + crew_path[1] if len(crew_path) > 1 else ""
        if scope["method"] == "GET" and rest == "/tasks":
            status = Request(scope).query_params.get("status")
            if status is not None and not _known_state(status):
                await _rest_refusal(f"status: {status!r} (one of {_state_names()})")(scope, receive, send)
                return
        if scope["method"] != "POST" or (rest and rest not in _REST_BODIES):
            await self.app(scope, receive, send)
            return
        body = await _read(receive)
        refusal = self._check(scope, rest, body)
        if refusal is not None:
            await refusal(scope, _replay(body, receive), send)
            return
        await self.app(scope, _replay(body, receive), send)

    def _check(self, scope: Scope, rest: str, body: bytes) -> Response | None:
        try:
            envelope: Any = json.loads(body or b"null")
        except ValueError:
            return None  # the SDK answers a parse error
        if rest:
            unknown = unknown_enum_values(envelope, _REST_BODIES[rest])
            return _rest_refusal("; ".join(unknown)) if unknown else None
        if not isinstance(envelope, dict):
            return None
        method = envelope.get("method")
        if not isinstance(method, str):
            return None
        headers: list[tuple[bytes, bytes]] = list(scope["headers"])
        if not any(name == _VERSION and value.strip() for name, value in headers):
            version = PROTOCOL_VERSION_0_3 if "/" in method else PROTOCOL_VERSION_CURRENT
            scope["headers"] = [*(h for h in headers if h[0] != _VERSION), (_VERSION, version.encode())]
        descriptor = _JSONRPC_PARAMS.get(method)
        unknown = unknown_enum_values(envelope.get("params"), descriptor) if descriptor else []
        if not unknown:
            return None
        request_id = envelope.get("id") if isinstance(envelope.get("id"), str | int) else None
        error = InvalidParamsError(message=f"unknown enum value: {'; '.join(unknown)}")
        return JSONResponse(build_error_response(request_id, error))


def _known_state(value: str) -> bool:
    names: list[str] = list(TaskState.keys())
    return value in names or (value.isdigit() and int(value) in TaskState.values())


def _state_names() -> str:
    return ", ".join(TaskState.keys())


def _rest_refusal(what: str) -> Response:
    payload = build_rest_error_payload(InvalidParamsError(message=f"unknown enum value: {what}"))
    return JSONResponse(payload, status_code=400)


async def _read(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def conflict_on_not_cancelable(routes: list[BaseRoute]) -> list[BaseRoute]:
    """``routes`` with the REST cancel answering 409 (not 400) for a task that has ended."""
    return [_cancel_409(route) if _is_cancel(route) else route for route in routes]


def _is_cancel(route: BaseRoute) -> bool:
    return isinstance(route, Route) and route.path.endswith(":cancel")


def _cancel_409(route: BaseRoute) -> BaseRoute:
    assert isinstance(route, Route)
    endpoint: Callable[[Request], Awaitable[Response]] = route.endpoint

    async def cancel(request: Request) -> Response:
        response = await endpoint(request)
        if response.status_code == 400 and b"TASK_NOT_CANCELABLE" in bytes(response.body):
            response.status_code = 409
        return response

    return Route(route.path, cancel, methods=sorted(route.methods or ["POST"]))
