"""The server half of the A2A NATS binding: serve an a2a-sdk ``RequestHandler`` on ``crews.a2a.<agent>``.

Replicas of one agent share the subject through a queue group. Each request is
an A2A JSON-RPC 2.0 envelope; a unary method gets one reply, a streaming one a
numbered sequence of frames ending with an ``end`` frame, with heartbeats while
the agent is quiet (``docs/a2a-nats-binding.md``)::

    server = NatsA2AServer.for_executor(nc, "research.writer", executor, card)
    async with server:
        ...
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from types import TracebackType
from typing import Final, Self

import nats.errors
from a2a.auth.user import UnauthenticatedUser, User
from a2a.extensions.common import HTTP_EXTENSION_HEADER, get_requested_extensions
from a2a.server.agent_execution import AgentExecutor
from a2a.server.context import ServerCallContext
from a2a.server.events import Event
from a2a.server.jsonrpc_models import JSONParseError
from a2a.server.request_handlers import DefaultRequestHandlerV2, RequestHandler
from a2a.server.tasks import InMemoryTaskStore, TaskStore
from a2a.types import (
    AgentCard,
)
from a2a.utils.constants import VERSION_HEADER
from a2a.utils.errors import (
    A2AError,
    InternalError,
    VersionNotSupportedError,
)
from a2a.utils.proto_utils import to_stream_response
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message as ProtoMessage
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from opentelemetry import trace

from bus.a2a_nats._jsonrpc import (
    STREAMING,
    RequestId,
    Unauthenticated,
    error_reply,
    events_of,
    ok,
    parse_call,
    request_id_of,
    unary_result,
)
from bus.a2a_nats.client import NATS_PROTOCOL_BINDING, SEQ_HEADER, STREAM_HEADER
from bus.subjects import a2a_subject
from bus.tracing import extract

logger = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)

Authenticator = Callable[[str | None], Awaitable[User | None]]
"""Given the bearer key of a request (``None`` when absent), the caller, or ``None`` to refuse the call."""

DEFAULT_HEARTBEAT_S: Final = 5.0


class ApiKeyUser(User):
    """A caller identified by an API key."""

    def __init__(self, name: str) -> None:
        self._name = name

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def user_name(self) -> str:
        return self._name


def api_key_authenticator(keys: Mapping[str, str]) -> Authenticator:
    """An ``Authenticator`` for the bearer keys of ``keys`` (key → user name), compared in constant time."""
    known = [(key.encode(), name) for key, name in keys.items()]

    async def authenticate(token: str | None) -> User | None:
        if token is None:
            return None
        matches = [name for key, name in known if hmac.compare_digest(key, token.encode())]
        return ApiKeyUser(matches[0]) if matches else None

    return authenticate


class NatsA2AServer:
    """Serves ``request_handler`` on ``crews.a2a.<agent>`` in queue group ``queue`` (default: the subject).

    ``authenticate`` (optional) checks the ``Authorization: Bearer`` key of every
    request; ``heartbeat_interval`` paces heartbeats in quiet streams;
    ``max_in_flight`` bounds concurrent requests on this replica. The server does
    not own ``nc``; it closes ``request_handler`` only if it built it.
    """

    def __init__(
        self,
        nc: NATS,
        agent: str,
        request_handler: RequestHandler,
        *,
        queue: str | None = None,
        authenticate: Authenticator | None = None,
        heartbeat_interval: float = DEFAULT_HEARTBEAT_S,
        max_in_flight: int = 100,
    ) -> None:
        self._nc = nc
        self.subject = a2a_subject(agent)
        self.queue = queue or self.subject
        self._handler = request_handler
        self._authenticate = authenticate
        self._heartbeat = heartbeat_interval
        self._slots = asyncio.Semaphore(max_in_flight)
        self._tasks: set[asyncio.Task[None]] = set()
        self._sub: Subscription | None = None
        self._owned_handler: DefaultRequestHandlerV2 | None = None

    @classmethod
    def for_executor(
        cls,
        nc: NATS,
        agent: str,
        executor: AgentExecutor,
        agent_card: AgentCard,
        *,
        task_store: TaskStore | None = None,
        queue: str | None = None,
        authenticate: Authenticator | None = None,
        heartbeat_interval: float = DEFAULT_HEARTBEAT_S,
        max_in_flight: int = 100,
    ) -> NatsA2AServer:
        """Serve ``executor`` through the SDK's ``DefaultRequestHandler`` (default: in-memory task store)."""
        handler = DefaultRequestHandlerV2(
            agent_executor=executor, task_store=task_store or InMemoryTaskStore(), agent_card=agent_card
        )
        server = cls(
            nc,
            agent,
            handler,
            queue=queue,
            authenticate=authenticate,
            heartbeat_interval=heartbeat_interval,
            max_in_flight=max_in_flight,
        )
        server._owned_handler = handler
        return server

    async def start(self) -> None:
        """Subscribe to the agent's subject; requests are served from now on."""
        if self._sub is None:
            self._sub = await self._nc.subscribe(self.subject, queue=self.queue, cb=self._on_request)
            await self._nc.flush()  # the server has the subscription: a caller on another connection finds it

    async def stop(self, grace: float = 10.0) -> None:
        """Stop taking requests, give those in flight ``grace`` seconds, then cancel the rest."""
        sub, self._sub = self._sub, None
        if sub is not None:
            try:
                await sub.drain()  # type: ignore[no-untyped-call]  # nats-py leaves drain unannotated
            except nats.errors.Error as e:  # connection already closed: nothing more arrives
                logger.debug("draining %s: %r", self.subject, e)
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._owned_handler is not None:
            await self._owned_handler.aclose()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _on_request(self, msg: Msg) -> None:
        await self._slots.acquire()  # blocks this subscription's delivery: back-pressure
        task = asyncio.create_task(self._handle(msg))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()

    async def _handle(self, msg: Msg) -> None:
        headers = {key.lower(): value for key, value in (msg.headers or {}).items()}
        with _tracer.start_as_current_span(
            "a2a.nats request", context=extract(headers), kind=trace.SpanKind.SERVER
        ) as span:
            try:
                await self._serve(msg, headers, span)
            except Exception:  # transport edge: log with context, answer with an internal error
                logger.exception("A2A request on %s failed", self.subject)
                await self._publish_quietly(msg.reply, error_reply(None, InternalError()))

    async def _serve(self, msg: Msg, headers: dict[str, str], span: trace.Span) -> None:
        if not msg.reply:
            logger.warning("dropping an A2A request on %s without a reply subject", self.subject)
            return
        try:
            envelope = json.loads(msg.data)
        except ValueError as e:
            await self._reply(msg.reply, None, error_reply(None, JSONParseError(message=str(e))))
            return
        request_id = request_id_of(envelope)
        try:
            method, params = parse_call(envelope)
            context = await self._call_context(method, request_id, params, headers)
        except A2AError as e:
            await self._reply(msg.reply, request_id, error_reply(request_id, e))
            return
        span.update_name(f"a2a.nats {method}")
        span.set_attributes({"rpc.system": "a2a", "rpc.method": method})
        if method in STREAMING:
            await self._stream(msg.reply, request_id, events_of(self._handler, params, context))
            return
        try:
            body = ok(request_id, await unary_result(self._handler, params, context))
        except A2AError as e:
            body = error_reply(request_id, e)
        await self._reply(msg.reply, request_id, body)

    async def _call_context(
        self, method: str, request_id: RequestId, params: ProtoMessage, headers: dict[str, str]
    ) -> ServerCallContext:
        version = headers.get(VERSION_HEADER.lower()) or "1.0"  # the binding exists only for A2A 1.x
        if version.split(".")[0] != "1":
            raise VersionNotSupportedError(f"A2A version {version!r} is not served over NATS; use 1.0")
        visible = {key: value for key, value in headers.items() if key != "authorization"}
        return ServerCallContext(
            user=await self._user(headers.get("authorization")),
            tenant=getattr(params, "tenant", ""),
            requested_extensions=get_requested_extensions([headers.get(HTTP_EXTENSION_HEADER.lower(), "")]),
            state={
                "headers": visible,
                "method": method,
                "request_id": request_id,
                "binding": NATS_PROTOCOL_BINDING,
            },
        )

    async def _user(self, authorization: str | None) -> User:
        if self._authenticate is None:
            return UnauthenticatedUser()
        scheme, _, token = (authorization or "").partition(" ")
        user = await self._authenticate(token.strip() if scheme.lower() == "bearer" and token else None)
        if user is None or not user.is_authenticated:
            raise Unauthenticated
        return user

    async def _stream(self, inbox: str, request_id: RequestId, events: AsyncGenerator[Event]) -> None:
        writer = _StreamWriter(self._nc, inbox)
        beats = asyncio.create_task(writer.heartbeats(self._heartbeat))
        try:
            end = await _pump(request_id, events, writer)
        finally:
            beats.cancel()
            await events.aclose()
            await asyncio.gather(beats, return_exceptions=True)
        await writer.end(end)

    async def _reply(self, reply: str, request_id: RequestId, body: bytes) -> None:
        try:
            await self._nc.publish(reply, body)
        except nats.errors.MaxPayloadError:
            too_big = InternalError(f"the reply ({len(body)} bytes) exceeds the NATS max_payload")
            await self._nc.publish(reply, error_reply(request_id, too_big))

    async def _publish_quietly(self, reply: str, body: bytes) -> None:
        if not reply:
            return
        try:
            await self._nc.publish(reply, body)
        except nats.errors.Error as e:
            logger.warning("could not send an error reply on %s: %r", self.subject, e)


class _StreamWriter:
    """Publishes the numbered frames of one stream to the caller's inbox."""

    def __init__(self, nc: NATS, inbox: str) -> None:
        self._nc = nc
        self._inbox = inbox
        self._seq = 0  # last data frame published

    async def data(self, body: bytes) -> None:
        seq = self._seq + 1
        await self._send("data", seq, body)
        self._seq = seq

    async def end(self, body: bytes) -> None:
        await self._send("end", self._seq + 1, body)

    async def heartbeats(self, interval: float) -> None:
        """Every ``interval`` s, repeat the last sequence number: the caller sees a live, gap-free stream."""
        try:
            while True:
                await asyncio.sleep(interval)
                await self._send("heartbeat", self._seq, b"")
        except nats.errors.Error as e:
            logger.debug("heartbeat to %s stopped: %r", self._inbox, e)

    async def _send(self, kind: str, seq: int, body: bytes) -> None:
        await self._nc.publish(self._inbox, body, headers={STREAM_HEADER: kind, SEQ_HEADER: str(seq)})


async def _pump(request_id: RequestId, events: AsyncGenerator[Event], writer: _StreamWriter) -> bytes:
    """Forward every event as a ``data`` frame; return the ``end`` frame's body (empty, or the error)."""
    try:
        async for event in events:
            await writer.data(ok(request_id, MessageToDict(to_stream_response(event))))
    except A2AError as e:
        return error_reply(request_id, e)
    except nats.errors.MaxPayloadError:
        return error_reply(request_id, InternalError("an event exceeds the NATS max_payload"))
    return b""
