"""A job's events on ``crews.events.<job>``, kept in the ``CREWS_EVENTS`` stream.

A subscriber replays a job from its first event (or from a stream sequence,
to resume) and then follows. The events themselves are built by
``bus.contracts.events``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import nats.js.errors
from a2a.types import StreamResponse, TaskArtifactUpdateEvent, TaskStatusUpdateEvent
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from bus import subjects
from bus.contracts.codec import decode, encode
from bus.contracts.events import EVENT_KIND_HEADER, event_kind, wrap
from bus.jetstream.dispatch import publish_durable


@dataclass(frozen=True)
class JobEvent:
    """One event and its position in the events stream (the SSE event id)."""

    seq: int
    event: StreamResponse


async def publish_event(
    js: JetStreamContext, job: str, event: TaskStatusUpdateEvent | TaskArtifactUpdateEvent, event_id: str
) -> int:
    """Record one event of ``job``; the same ``event_id`` twice is stored once. Returns its sequence."""
    ack = await publish_durable(
        js,
        subjects.events_subject(job),
        encode(wrap(event)),
        event_id,
        subjects.EVENTS_STREAM,
        headers={EVENT_KIND_HEADER: event_kind(event)},
    )
    return int(ack.seq)


async def follow_events(js: JetStreamContext, job: str, after_seq: int = 0) -> AsyncIterator[JobEvent]:
    """Every event of ``job`` after stream sequence ``after_seq`` (0: from the start), then new ones."""
    config = ConsumerConfig(
        ack_policy=AckPolicy.NONE,
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE if after_seq else DeliverPolicy.ALL,
        opt_start_seq=after_seq + 1 if after_seq else None,
        inactive_threshold=60.0,
    )
    sub = await js.subscribe(
        subjects.events_subject(job), stream=subjects.EVENTS_STREAM, ordered_consumer=True, config=config
    )
    try:
        async for msg in sub.messages:
            yield JobEvent(seq=msg.metadata.sequence.stream, event=decode(msg.data, StreamResponse))
    finally:
        await sub.unsubscribe()


async def last_event_seq(js: JetStreamContext, job: str) -> int:
    """The stream sequence of ``job``'s latest event (0: none yet), to follow only what comes after."""
    try:
        msg = await js.get_last_msg(subjects.EVENTS_STREAM, subjects.events_subject(job))
    except nats.js.errors.NotFoundError:
        return 0
    return int(msg.seq or 0)
