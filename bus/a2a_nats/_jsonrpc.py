"""The JSON-RPC side of the A2A NATS binding: parse a request, run it on a handler, encode the reply."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator
from typing import Any

from a2a.server.context import ServerCallContext
from a2a.server.events import Event
from a2a.server.jsonrpc_models import JSONRPCError
from a2a.server.request_handlers import RequestHandler, build_error_response
from a2a.server.routes.common import serialize_list_tasks_response
from a2a.types import (
    CancelTaskRequest,
    DeleteTaskPushNotificationConfigRequest,
    GetExtendedAgentCardRequest,
    GetTaskPushNotificationConfigRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    ListTasksRequest,
    SendMessageRequest,
    SendMessageResponse,
    SubscribeToTaskRequest,
    Task,
    TaskPushNotificationConfig,
)
from a2a.utils.errors import (
    A2AError,
    InvalidParamsError,
    InvalidRequestError,
    MethodNotFoundError,
    TaskNotFoundError,
    UnsupportedOperationError,
)
from google.protobuf.json_format import MessageToDict, ParseDict, ParseError
from google.protobuf.message import Message as ProtoMessage

from bus.a2a_nats.client import UNAUTHENTICATED_CODE
from bus.a2a_nats.strict import unknown_enum_values

logger = logging.getLogger(__name__)

RequestId = str | int | None

_REQUEST_TYPES: dict[str, type[ProtoMessage]] = {
    "SendMessage": SendMessageRequest,
    "SendStreamingMessage": SendMessageRequest,
    "GetTask": GetTaskRequest,
    "ListTasks": ListTasksRequest,
    "CancelTask": CancelTaskRequest,
    "SubscribeToTask": SubscribeToTaskRequest,
    "GetExtendedAgentCard": GetExtendedAgentCardRequest,
    "CreateTaskPushNotificationConfig": TaskPushNotificationConfig,
    "GetTaskPushNotificationConfig": GetTaskPushNotificationConfigRequest,
    "ListTaskPushNotificationConfigs": ListTaskPushNotificationConfigsRequest,
    "DeleteTaskPushNotificationConfig": DeleteTaskPushNotificationConfigRequest,
}
STREAMING = frozenset({"SendStreamingMessage", "SubscribeToTask"})


class Unauthenticated(A2AError):
    message = "Unauthenticated: a valid bearer key is required"


def request_id_of(envelope: object) -> RequestId:
    request_id = envelope.get("id") if isinstance(envelope, dict) else None
    return request_id if isinstance(request_id, str | int) and not isinstance(request_id, bool) else None


def parse_call(envelope: object) -> tuple[str, ProtoMessage]:
    """The method and its typed params, or the A2A error that rejects the envelope."""
    if not isinstance(envelope, dict):
        raise InvalidRequestError("a request is one JSON-RPC object (batches are not supported)")
    if envelope.get("jsonrpc") != "2.0":
        raise InvalidRequestError("'jsonrpc' must be exactly '2.0'")
    if envelope.get("id") is not None and request_id_of(envelope) is None:
        raise InvalidRequestError("'id' must be a string, an integer or null")
    method = envelope.get("method")
    if not isinstance(method, str) or not method:
        raise InvalidRequestError("'method' is required")
    request_type = _REQUEST_TYPES.get(method)
    if request_type is None:
        raise MethodNotFoundError(f"{method!r} is not an A2A method")
    params = envelope.get("params", {})
    try:
        parsed = ParseDict(params, request_type(), ignore_unknown_fields=True)
    except ParseError as e:
        raise InvalidParamsError(data={"parseError": str(e)}) from e
    unknown = unknown_enum_values(params, request_type.DESCRIPTOR)
    if unknown:
        raise InvalidParamsError(message=f"unknown enum value: {'; '.join(unknown)}")
    return method, parsed


async def unary_result(handler: RequestHandler, params: ProtoMessage, context: ServerCallContext) -> Any:
    if isinstance(params, SendMessageRequest):
        result = await handler.on_message_send(params, context)
        if isinstance(result, Task):
            return MessageToDict(SendMessageResponse(task=result))
        return MessageToDict(SendMessageResponse(message=result))
    if isinstance(params, GetTaskRequest):
        return _task(await handler.on_get_task(params, context))
    if isinstance(params, CancelTaskRequest):
        return _task(await handler.on_cancel_task(params, context))
    if isinstance(params, ListTasksRequest):
        return serialize_list_tasks_response(
            await handler.on_list_tasks(params, context), params.include_artifacts
        )
    if isinstance(params, GetExtendedAgentCardRequest):
        return MessageToDict(await handler.on_get_extended_agent_card(params, context))
    return await _push_result(handler, params, context)


async def _push_result(handler: RequestHandler, params: ProtoMessage, context: ServerCallContext) -> Any:
    """The four push-notification config methods (the handler refuses them when it sends none)."""
    if isinstance(params, TaskPushNotificationConfig):
        return MessageToDict(await handler.on_create_task_push_notification_config(params, context))
    if isinstance(params, GetTaskPushNotificationConfigRequest):
        return MessageToDict(await handler.on_get_task_push_notification_config(params, context))
    if isinstance(params, ListTaskPushNotificationConfigsRequest):
        return MessageToDict(await handler.on_list_task_push_notification_configs(params, context))
    if isinstance(params, DeleteTaskPushNotificationConfigRequest):
        await handler.on_delete_task_push_notification_config(params, context)
        return None
    raise UnsupportedOperationError(f"{type(params).__name__} has no unary method")


def events_of(
    handler: RequestHandler, params: ProtoMessage, context: ServerCallContext
) -> AsyncGenerator[Event]:
    if isinstance(params, SendMessageRequest):
        return handler.on_message_send_stream(params, context)
    if isinstance(params, SubscribeToTaskRequest):
        return handler.on_subscribe_to_task(params, context)
    raise UnsupportedOperationError(f"{type(params).__name__} has no streaming method")


def _task(task: Task | None) -> Any:
    if task is None:
        raise TaskNotFoundError
    return MessageToDict(task)


def ok(request_id: RequestId, result: Any) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result}).encode()


def error_reply(request_id: RequestId, error: A2AError | JSONRPCError) -> bytes:
    """The JSON-RPC error response for ``error``, with the SDK's code and ``ErrorInfo`` details."""
    if isinstance(error, Unauthenticated):
        response = build_error_response(
            request_id, JSONRPCError(code=UNAUTHENTICATED_CODE, message=error.message)
        )
    else:
        response = build_error_response(request_id, error)
    logger.debug("A2A error reply %s", response.get("error"))
    return json.dumps(response).encode()
