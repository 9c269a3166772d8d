"""Publish work durably: JetStream with a ``Nats-Msg-Id`` and a checked publish ack.

A publish that gets no ack because the stream has no leader for a moment (a
NATS cluster electing a new one after a server died, or the client moving to
another server) is sent again, with the same id, for up to ``PUBLISH_RETRY_S``:
JetStream stores it once.
"""

from __future__ import annotations

import asyncio
import logging

from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.errors import NoStreamResponseError, ServiceUnavailableError

from bus import subjects
from bus.errors import PublishFailed
from bus.tracing import inject

MSG_ID = "Nats-Msg-Id"
PUBLISH_RETRY_S = 20.0
# No ack yet: the stream is between leaders, or the connection between servers.
_UNACKED = (NatsTimeout, NoStreamResponseError, ServiceUnavailableError)
log = logging.getLogger(__name__)


async def publish_durable(
    js: JetStreamContext,
    subject: str,
    payload: bytes,
    msg_id: str,
    stream: str,
    headers: dict[str, str] | None = None,
) -> PubAck:
    """Publish once per ``msg_id`` (JetStream de-duplicates); raise ``PublishFailed`` unless stored."""
    headers = inject({**(headers or {}), MSG_ID: msg_id})
    try:
        ack = await _publish_until_acked(js, subject, payload, stream, headers)
    except NatsError as exc:
        raise PublishFailed(f"publish to {subject} (id {msg_id}) was not acknowledged: {exc}") from exc
    if ack.stream != stream:
        raise PublishFailed(f"publish to {subject} landed in {ack.stream}, expected {stream}")
    return ack


async def _publish_until_acked(
    js: JetStreamContext, subject: str, payload: bytes, stream: str, headers: dict[str, str]
) -> PubAck:
    loop = asyncio.get_running_loop()
    deadline, pause = loop.time() + PUBLISH_RETRY_S, 0.1
    while True:
        try:
            return await js.publish(subject, payload, stream=stream, headers=headers)
        except _UNACKED as exc:
            if loop.time() + pause > deadline:
                raise
            log.warning("publish to %s not acknowledged (%s), sending again", subject, type(exc).__name__)
            await asyncio.sleep(pause)  # a back-off between tries, not a synchronization
            pause = min(pause * 2, 1.0)


def step_msg_id(job: str, step: str, plan_version: int) -> str:
    """The de-duplication id of one step dispatch (docs/architecture.md: ``<job>:<step>:<plan version>``)."""
    return f"{job}:{step}:{plan_version}"


async def dispatch_step(js: JetStreamContext, crew: str, role: str, request: bytes, msg_id: str) -> PubAck:
    """Send one step, an A2A ``SendMessage`` request's JSON (``bus.contracts.step.request_json``), to a role's queue."""
    return await publish_durable(
        js, subjects.task_subject(crew, role), request, msg_id, subjects.TASKS_STREAM
    )
