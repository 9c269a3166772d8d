"""The client half of the A2A NATS binding: an a2a-sdk ``ClientTransport`` over NATS.

The wire format (subjects, envelope, headers, streaming frames, error codes) is
specified in ``docs/a2a-nats-binding.md``; the constants below are its names,
and the server (``bus.a2a_nats.server``) uses the same ones.

Use it through the SDK's own client API::

    factory = nats_client_factory(nc)           # registers the binding on a ClientFactory
    client = factory.create(card)               # card lists nats_agent_interface(...)
    async for event in client.send_message(request):
        ...
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, Final, Literal, NoReturn
from urllib.parse import urlsplit
from uuid import uuid4

import nats.errors
from a2a.client import ClientCallContext, ClientConfig, ClientFactory
from a2a.client.client_factory import TransportProducer
from a2a.client.errors import A2AClientError
from a2a.client.transports.base import ClientTransport
from a2a.types import (
    AgentCard,
    AgentInterface,
    CancelTaskRequest,
    DeleteTaskPushNotificationConfigRequest,
    GetExtendedAgentCardRequest,
    GetTaskPushNotificationConfigRequest,
    GetTaskRequest,
    ListTaskPushNotificationConfigsRequest,
    ListTaskPushNotificationConfigsResponse,
    ListTasksRequest,
    ListTasksResponse,
    SendMessageRequest,
    SendMessageResponse,
    StreamResponse,
    SubscribeToTaskRequest,
    Task,
    TaskPushNotificationConfig,
)
from a2a.utils.constants import PROTOCOL_VERSION_CURRENT, VERSION_HEADER
from a2a.utils.errors import JSON_RPC_ERROR_CODE_MAP, A2AError
from a2a.utils.proto_utils import parse_lenient
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message as ProtoMessage
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from opentelemetry import trace

from bus.errors import A2ANatsError
from bus.subjects import A2A_PREFIX, a2a_subject
from bus.tracing import inject

logger = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)

NATS_PROTOCOL_BINDING: Final = "https://crews.dev/a2a/bindings/nats/v1"
"""The ``protocolBinding`` URI of this binding in an agent card's ``supportedInterfaces``."""

STREAM_HEADER: Final = "A2A-Stream"
"""Kind of a streamed reply frame: ``data``, ``end`` or ``heartbeat``."""
SEQ_HEADER: Final = "A2A-Stream-Seq"
"""Sequence number of a streamed frame (``data`` and ``end`` count 1, 2, 3…; a heartbeat repeats the last)."""
STATUS_HEADER: Final = "Status"
"""Set by nats-server on the reply it sends when nobody serves the subject."""
NO_RESPONDERS: Final = "503"

StreamFrame = Literal["data", "end", "heartbeat"]
_FRAME_KINDS: dict[str, StreamFrame] = {"data": "data", "end": "end", "heartbeat": "heartbeat"}

UNAUTHENTICATED_CODE: Final = -32040
"""Binding error code: missing or rejected ``Authorization`` bearer key (HTTP 401 in the HTTP bindings)."""

DEFAULT_TIMEOUT_S: Final = 60.0
DEFAULT_STREAM_IDLE_TIMEOUT_S: Final = 30.0
DEFAULT_NATS_URL: Final = "nats://127.0.0.1:4222"

_ERROR_TYPES: dict[int, type[A2AError]] = {code: cls for cls, code in JSON_RPC_ERROR_CODE_MAP.items()}
_ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"


def nats_agent_interface(agent: str, nats_url: str = DEFAULT_NATS_URL, *, tenant: str = "") -> AgentInterface:
    """The ``supportedInterfaces`` entry for ``agent`` served on NATS at ``nats_url``.

    The URL is ``nats://host:port/crews.a2a.<agent>``; credentials in ``nats_url`` are dropped,
    and of a list of servers (comma-separated) the first is named.
    """
    parts = urlsplit(nats_url.split(",", 1)[0].strip())
    if parts.scheme not in ("nats", "tls") or not parts.hostname:
        raise ValueError(f"{nats_url!r} is not a nats:// or tls:// server URL")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = f"{host}:{parts.port}" if parts.port else host
    return AgentInterface(
        url=f"{parts.scheme}://{netloc}/{a2a_subject(agent)}",
        protocol_binding=NATS_PROTOCOL_BINDING,
        protocol_version=PROTOCOL_VERSION_CURRENT,
        tenant=tenant,
    )


def subject_from_url(url: str) -> str:
    """The request subject named by a NATS interface URL (``nats://host:port/<subject>``)."""
    parts = urlsplit(url)
    subject = parts.path.lstrip("/")
    if parts.scheme not in ("nats", "tls") or not subject.startswith(f"{A2A_PREFIX}."):
        raise ValueError(f"{url!r} is not a NATS A2A interface URL (nats://host:port/{A2A_PREFIX}.<agent>)")
    return a2a_subject(subject.removeprefix(f"{A2A_PREFIX}."))


def nats_transport_producer(
    nc: NATS,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    stream_idle_timeout: float = DEFAULT_STREAM_IDLE_TIMEOUT_S,
) -> TransportProducer:
    """A ``ClientFactory`` producer that builds a ``NatsTransport`` on the connection ``nc``."""

    def produce(card: AgentCard, url: str, config: ClientConfig) -> ClientTransport:
        return NatsTransport(
            nc, subject_from_url(url), card, timeout=timeout, stream_idle_timeout=stream_idle_timeout
        )

    return produce


def nats_client_factory(
    nc: NATS,
    config: ClientConfig | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    stream_idle_timeout: float = DEFAULT_STREAM_IDLE_TIMEOUT_S,
) -> ClientFactory:
    """A ``ClientFactory`` that prefers the NATS binding (and keeps any bindings ``config`` lists)."""
    config = config or ClientConfig()
    others = [b for b in config.supported_protocol_bindings if b != NATS_PROTOCOL_BINDING]
    factory = ClientFactory(
        dataclasses.replace(config, supported_protocol_bindings=[NATS_PROTOCOL_BINDING, *others])
    )
    factory.register(
        NATS_PROTOCOL_BINDING,
        nats_transport_producer(nc, timeout=timeout, stream_idle_timeout=stream_idle_timeout),
    )
    return factory


class NatsTransport(ClientTransport):
    """An A2A client transport over NATS request-reply; the connection ``nc`` stays the caller's.

    ``timeout`` bounds a unary call (``ClientCallContext.timeout`` overrides it);
    ``stream_idle_timeout`` bounds the silence between frames of a stream and
    must exceed the server's heartbeat interval.
    """

    def __init__(
        self,
        nc: NATS,
        subject: str,
        agent_card: AgentCard | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        stream_idle_timeout: float = DEFAULT_STREAM_IDLE_TIMEOUT_S,
    ) -> None:
        self._nc = nc
        self.subject = subject
        self.agent_card = agent_card
        self._timeout = timeout
        self._idle_timeout = stream_idle_timeout

    async def send_message(
        self, request: SendMessageRequest, *, context: ClientCallContext | None = None
    ) -> SendMessageResponse:
        return parse_lenient(await self._call("SendMessage", request, context), SendMessageResponse())

    async def send_message_streaming(
        self, request: SendMessageRequest, *, context: ClientCallContext | None = None
    ) -> AsyncGenerator[StreamResponse]:
        async for event in self._stream("SendStreamingMessage", request, context):
            yield event

    async def get_task(self, request: GetTaskRequest, *, context: ClientCallContext | None = None) -> Task:
        return parse_lenient(await self._call("GetTask", request, context), Task())

    async def list_tasks(
        self, request: ListTasksRequest, *, context: ClientCallContext | None = None
    ) -> ListTasksResponse:
        return parse_lenient(await self._call("ListTasks", request, context), ListTasksResponse())

    async def cancel_task(
        self, request: CancelTaskRequest, *, context: ClientCallContext | None = None
    ) -> Task:
        return parse_lenient(await self._call("CancelTask", request, context), Task())

    async def subscribe(
        self, request: SubscribeToTaskRequest, *, context: ClientCallContext | None = None
    ) -> AsyncGenerator[StreamResponse]:
        async for event in self._stream("SubscribeToTask", request, context):
            yield event

    async def get_extended_agent_card(
        self, request: GetExtendedAgentCardRequest, *, context: ClientCallContext | None = None
    ) -> AgentCard:
        if self.agent_card is not None and not self.agent_card.capabilities.extended_agent_card:
            return self.agent_card
        return parse_lenient(await self._call("GetExtendedAgentCard", request, context), AgentCard())

    async def create_task_push_notification_config(
        self, request: TaskPushNotificationConfig, *, context: ClientCallContext | None = None
    ) -> TaskPushNotificationConfig:
        found = await self._call("CreateTaskPushNotificationConfig", request, context)
        return parse_lenient(found, TaskPushNotificationConfig())

    async def get_task_push_notification_config(
        self, request: GetTaskPushNotificationConfigRequest, *, context: ClientCallContext | None = None
    ) -> TaskPushNotificationConfig:
        found = await self._call("GetTaskPushNotificationConfig", request, context)
        return parse_lenient(found, TaskPushNotificationConfig())

    async def list_task_push_notification_configs(
        self, request: ListTaskPushNotificationConfigsRequest, *, context: ClientCallContext | None = None
    ) -> ListTaskPushNotificationConfigsResponse:
        found = await self._call("ListTaskPushNotificationConfigs", request, context)
        return parse_lenient(found, ListTaskPushNotificationConfigsResponse())

    async def delete_task_push_notification_config(
        self, request: DeleteTaskPushNotificationConfigRequest, *, context: ClientCallContext | None = None
    ) -> None:
        await self._call("DeleteTaskPushNotificationConfig", request, context)

    async def close(self) -> None:
        """Nothing to release: the NATS connection belongs to the caller."""

    async def _call(self, method: str, request: ProtoMessage, context: ClientCallContext | None) -> Any:
        """One unary request-reply; returns the JSON-RPC ``result`` or raises the mapped A2A error."""
        timeout = context.timeout if context and context.timeout is not None else self._timeout
        with trace.use_span(self._span(method), end_on_exit=True):
            try:
                msg = await self._nc.request(
                    self.subject, _envelope(method, request), timeout=timeout, headers=_headers(context)
                )
            except nats.errors.NoRespondersError as e:
                raise A2ANatsError(f"no agent serves {self.subject}") from e
            except nats.errors.TimeoutError as e:
                raise A2ANatsError(f"{method} on {self.subject}: no reply within {timeout}s") from e
            except nats.errors.Error as e:
                raise A2ANatsError(f"{method} on {self.subject} failed: {e!r}") from e
            return _result(msg.data)

    async def _stream(
        self, method: str, request: ProtoMessage, context: ClientCallContext | None
    ) -> AsyncGenerator[StreamResponse]:
        """A streaming call: subscribe a private inbox, publish the request, read ordered frames."""
        span = self._span(method)
        with trace.use_span(span, end_on_exit=False):  # not across yields: the caller's context resumes us
            headers = _headers(context)
        try:
            inbox = self._nc.new_inbox()
            sub = await self._nc.subscribe(inbox)
            await self._nc.publish(self.subject, _envelope(method, request), reply=inbox, headers=headers)
        except nats.errors.Error as e:
            span.end()
            raise A2ANatsError(f"{method} on {self.subject} failed: {e!r}") from e
        try:
            async for result in _read_frames(sub, f"{method} on {self.subject}", self._idle_timeout):
                yield parse_lenient(result, StreamResponse())
        finally:
            span.end()
            await _unsubscribe(sub)

    def _span(self, method: str) -> trace.Span:
        """The client span of one call; its context travels in ``traceparent``."""
        return _tracer.start_span(
            f"a2a.nats {method}",
            kind=trace.SpanKind.CLIENT,
            attributes={
                "rpc.system": "a2a",
                "rpc.method": method,
                "messaging.destination.name": self.subject,
            },
        )


async def _read_frames(sub: Subscription, what: str, idle_timeout: float) -> AsyncIterator[Any]:
    """Yield each ``data`` frame's result in order; raise on a gap, an error, silence or no responders."""
    last = 0
    while True:
        msg = await _next_frame(sub, what, idle_timeout)
        kind, seq = _frame(msg, what)
        if kind == "heartbeat":
            if seq > last:
                raise A2ANatsError(
                    f"{what}: frames {last + 1}..{seq} were lost; resubscribe with SubscribeToTask"
                )
            continue
        if seq != last + 1:
            raise A2ANatsError(
                f"{what}: expected frame {last + 1}, got {seq}; resubscribe with SubscribeToTask"
            )
        last = seq
        if kind == "end":
            if msg.data:
                _result(msg.data)
            return
        yield _result(msg.data)


async def _next_frame(sub: Subscription, what: str, idle_timeout: float) -> Msg:
    try:
        return await sub.next_msg(timeout=idle_timeout)
    except nats.errors.TimeoutError as e:
        raise A2ANatsError(f"{what}: no frame or heartbeat for {idle_timeout}s") from e


def _frame(msg: Msg, what: str) -> tuple[StreamFrame, int]:
    """The kind and sequence number of a stream frame; a reply without them ends the stream with its error."""
    headers = msg.headers or {}
    if headers.get(STATUS_HEADER) == NO_RESPONDERS:
        raise A2ANatsError(f"{what}: no agent serves the subject")
    if STREAM_HEADER not in headers:
        _result(msg.data)  # a request rejected before its stream started carries only an error
        raise A2ANatsError(f"{what}: a unary reply arrived for a streaming call")
    kind = _FRAME_KINDS.get(headers[STREAM_HEADER])
    if kind is None:
        raise A2ANatsError(f"{what}: unknown stream frame kind {headers[STREAM_HEADER]!r}")
    try:
        return kind, int(headers.get(SEQ_HEADER, ""))
    except ValueError as e:
        raise A2ANatsError(f"{what}: frame without a valid {SEQ_HEADER} header") from e


def _envelope(method: str, request: ProtoMessage) -> bytes:
    body = {"jsonrpc": "2.0", "id": str(uuid4()), "method": method, "params": MessageToDict(request)}
    return json.dumps(body).encode()


def _headers(context: ClientCallContext | None) -> dict[str, str]:
    """Version, the caller's service parameters (``Authorization``, ``A2A-Extensions``), ``traceparent``."""
    headers = {VERSION_HEADER: PROTOCOL_VERSION_CURRENT}
    if context and context.service_parameters:
        headers.update(context.service_parameters)
    return inject(headers)


def _result(data: bytes) -> Any:
    """The ``result`` of a JSON-RPC response, or the A2A error its ``error`` names."""
    try:
        response = json.loads(data)
    except ValueError as e:
        raise A2AClientError(f"invalid JSON-RPC response: {e}") from e
    if not isinstance(response, dict):
        raise A2AClientError(f"invalid JSON-RPC response: expected an object, got {type(response).__name__}")
    error = response.get("error")
    if isinstance(error, dict):
        _raise_error(error)
    if error is not None or "result" not in response:
        raise A2AClientError(f"invalid JSON-RPC response: {response!r:.200}")
    return response["result"]


def _raise_error(error: dict[str, Any]) -> NoReturn:
    code = error.get("code")
    message = str(error.get("message", error))
    details = error.get("data")
    data: dict[str, Any] | None = None
    if isinstance(details, list):
        for detail in details:
            if isinstance(detail, dict) and detail.get("@type") == _ERROR_INFO_TYPE:
                data = detail.get("metadata") or None
                break
    if isinstance(code, int) and code in _ERROR_TYPES:
        raise _ERROR_TYPES[code](message, data=data)
    raise A2AClientError(f"JSON-RPC Error {code}: {message}")


async def _unsubscribe(sub: Subscription) -> None:
    try:
        await sub.unsubscribe()
    except nats.errors.Error as e:  # the connection closed first: the inbox is gone anyway
        logger.debug("unsubscribing stream inbox %s: %r", sub.subject, e)
