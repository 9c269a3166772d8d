"""Publish work durably: JetStream with a ``Nats-Msg-Id`` and a checked publish ack."""

from __future__ import annotations

from a2a.types import SendMessageRequest
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import PubAck

from bus import subjects
from bus.contracts.codec import encode
from bus.errors import PublishFailed
from bus.tracing import inject

MSG_ID = "Nats-Msg-Id"


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
        ack = await js.publish(subject, payload, stream=stream, headers=headers)
    except NatsError as exc:
        raise PublishFailed(f"publish to {subject} (id {msg_id}) was not acknowledged: {exc}") from exc
    if ack.stream != stream:
        raise PublishFailed(f"publish to {subject} landed in {ack.stream}, expected {stream}")
    return ack


def step_msg_id(job: str, step: str, plan_version: int) -> str:
    """The de-duplication id of one step dispatch (docs/architecture.md: ``<job>:<step>:<plan version>``)."""
    return f"{job}:{step}:{plan_version}"


async def dispatch_step(
    js: JetStreamContext, crew: str, role: str, request: SendMessageRequest, msg_id: str
) -> PubAck:
    """Send one step, an A2A ``SendMessage`` request, to a role's queue."""
    return await publish_durable(
        js, subjects.task_subject(crew, role), encode(request), msg_id, subjects.TASKS_STREAM
    )
