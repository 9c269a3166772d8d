"""Dead letters: a message that reached max deliveries is recorded, never silently lost.

Two paths lead here, and both write the same record under the same
``Nats-Msg-Id`` (so it is stored once):

- the work loop, when a handler fails on the last allowed delivery;
- the sweeper, for a message whose last delivery never came back (the worker
  was killed): JetStream's max-deliveries advisories are captured in the
  ``CREWS_ADVISORIES`` stream, and the sweeper turns each into a record.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable

from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError
from pydantic import BaseModel

from bus import subjects
from bus.jetstream.dispatch import publish_durable

log = logging.getLogger(__name__)

ADVISORIES_STREAM = "CREWS_ADVISORIES"
MAX_DELIVERIES_ADVISORY = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES"


class DeadLetter(BaseModel):
    """What is kept of a message that could not be handled."""

    stream: str
    consumer: str
    subject: str
    stream_seq: int
    deliveries: int
    reason: str
    payload_b64: str
    headers: dict[str, str] = {}

    @property
    def payload(self) -> bytes:
        return base64.b64decode(self.payload_b64)


DeadHandler = Callable[[DeadLetter], Awaitable[None]]


async def record_dead_letter(js: JetStreamContext, dead: DeadLetter) -> None:
    """Store ``dead`` in ``CREWS_DEAD`` once per original message."""
    await publish_durable(
        js,
        subjects.dead_letter_subject(dead.stream, dead.consumer),
        dead.model_dump_json().encode(),
        f"dead:{dead.stream}:{dead.stream_seq}",
        subjects.DEAD_LETTER_STREAM,
    )


async def ensure_advisory_capture(js: JetStreamContext, streams: list[str], replicas: int = 1) -> None:
    """Capture max-delivery advisories of ``streams`` durably (``replicas`` copies), for the sweeper."""
    config = StreamConfig(
        name=ADVISORIES_STREAM,
        subjects=[f"{MAX_DELIVERIES_ADVISORY}.{name}.*" for name in streams],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        num_replicas=replicas,
    )
    try:
        await js.stream_info(ADVISORIES_STREAM)
    except NotFoundError:
        await js.add_stream(config)
    else:
        await js.update_stream(config)


class Advisory(BaseModel):
    stream: str
    consumer: str
    stream_seq: int
    deliveries: int


async def sweep_once(js: JetStreamContext, on_dead: DeadHandler | None, batch: int = 50) -> int:
    """Turn captured advisories into dead letters; returns how many advisories were handled."""
    sub = await js.pull_subscribe(f"{MAX_DELIVERIES_ADVISORY}.>", durable="sweeper", stream=ADVISORIES_STREAM)
    try:
        msgs = await sub.fetch(batch, timeout=0.5)
    except (NatsTimeout, TimeoutError):
        return 0
    finally:
        await sub.unsubscribe()
    for msg in msgs:
        await _sweep(js, Advisory.model_validate_json(msg.data), on_dead)
        await msg.ack()
    return len(msgs)


async def _sweep(js: JetStreamContext, advisory: Advisory, on_dead: DeadHandler | None) -> None:
    try:
        raw = await js.get_msg(advisory.stream, advisory.stream_seq)
    except NotFoundError:
        return  # the work loop already recorded and removed it
    dead = DeadLetter(
        stream=advisory.stream,
        consumer=advisory.consumer,
        subject=raw.subject or "",
        stream_seq=advisory.stream_seq,
        deliveries=advisory.deliveries,
        reason=f"no result after {advisory.deliveries} deliveries (the worker stopped or timed out)",
        payload_b64=base64.b64encode(raw.data or b"").decode(),
        headers={k: str(v) for k, v in (raw.headers or {}).items()},
    )
    await record_dead_letter(js, dead)
    if on_dead is not None:
        await on_dead(dead)
    await js.delete_msg(advisory.stream, advisory.stream_seq)
    log.warning("dead-lettered %s seq %d: %s", dead.subject, dead.stream_seq, dead.reason)
