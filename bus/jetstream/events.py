"""A job's events on ``crews.events.<job>.<publisher>``, kept in the ``CREWS_EVENTS`` stream.

The publisher is in the subject: ``job`` for the API and the coordinator
(job-level status and output, approval decisions), ``<crew>.<role>.<kind>`` for a
role's workers (their steps' ``status`` and ``artifact`` events), so NATS
permissions let a role publish only as itself and the coordinator's consumer
takes step statuses only. A job that stops and an approval decided are also published as
their signal on ``crews.signals.<job>`` (the same stream; task, context and state only), which
is all a role's workers may read of other publishers: their steps stop and
wake on signals, and never see a job's output or an approval's arguments. A subscriber replays a job from its first event (or from a
stream sequence, to resume) and then follows ``crews.events.<job>.>``; it gets
only events whose shape fits their subject (``admissible``): a job-level event
from a role's subject, or one naming another job, is dropped. The events
themselves are built by ``bus.contracts.events``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import nats.js.errors
from a2a.types import StreamResponse, TaskArtifactUpdateEvent, TaskState, TaskStatusUpdateEvent
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from bus import subjects
from bus.contracts.codec import decode, encode
from bus.contracts.events import EVENT_KIND_HEADER, event_kind, signal_of, wrap
from bus.jetstream.dispatch import publish_durable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobEvent:
    """One event and its position in the events stream (the SSE event id)."""

    seq: int
    event: StreamResponse


async def publish_event(
    js: JetStreamContext,
    job: str,
    event: TaskStatusUpdateEvent | TaskArtifactUpdateEvent,
    event_id: str,
    *,
    role: tuple[str, str] | None = None,
) -> int:
    """Record one event of ``job``; the same ``event_id`` twice is stored once. Returns its sequence.

    ``role``: the ``(crew, role)`` of the worker publishing its step's event; ``None`` for the job's own
    publishers (the API, the coordinator), whose stops and approval decisions are then signalled too
    (``crews.signals.<job>``, ``signal_of``: what role workers wait on).
    """
    if role is None:
        subject = subjects.job_events_subject(job)
    else:
        subject = subjects.role_events_subject(job, *role, _role_event_kind(event))
    published = publish_durable(
        js,
        subject,
        encode(wrap(event)),
        event_id,
        subjects.EVENTS_STREAM,
        headers={EVENT_KIND_HEADER: event_kind(event)},
    )
    signal = signal_of(event) if role is None else None
    if signal is None:
        return int((await published).seq)
    signal_subject = subjects.job_signals_subject(job)
    signalled = publish_durable(
        js, signal_subject, encode(wrap(signal)), f"{event_id}:signal", subjects.EVENTS_STREAM
    )
    ack, _ = await asyncio.gather(published, signalled)  # two subjects, no order between them: one wait
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
        subjects.job_events_filter(job), stream=subjects.EVENTS_STREAM, ordered_consumer=True, config=config
    )
    try:
        async for msg in sub.messages:
            event = decode(msg.data, StreamResponse)
            if admissible(msg.subject, job, event):
                yield JobEvent(seq=msg.metadata.sequence.stream, event=event)
    finally:
        await sub.unsubscribe()


def admissible(subject: str, job: str, event: StreamResponse) -> bool:
    """Whether ``event``, read on ``subject``, may count as an event of ``job``.

    Only the job's own subject (the API, the coordinator) carries job-level events (task id = job
    id); it and the roles' subjects carry events of the job's steps (task ids ``<job>.<step>``).
    Anything else was forged by a role, or published by mistake: it is logged and left out.
    """
    source = subjects.event_source(subject)
    update = event.status_update if event.HasField("status_update") else event.artifact_update
    step = update.task_id.startswith(f"{job}.")
    ok = (
        source is not None
        and source.job == job
        and update.context_id == job
        and (step or (source.role is None and update.task_id == job))
    )
    if not ok:
        log.warning("event on %s for task %r of job %s does not fit its subject: left out", subject,
                    update.task_id, job)  # fmt: skip
    return ok


async def last_event_seq(js: JetStreamContext, job: str, *, own: bool = False) -> int:
    """The stream sequence of ``job``'s latest event (0: none yet), to follow only what comes after;
    ``own``: of the job's own events only (its statuses, output, decisions; not its steps')."""
    subject = subjects.job_events_subject(job) if own else subjects.job_events_filter(job)
    try:
        msg = await js.get_last_msg(subjects.EVENTS_STREAM, subject)
    except nats.js.errors.NotFoundError:
        return 0
    return int(msg.seq or 0)


def _role_event_kind(event: TaskStatusUpdateEvent | TaskArtifactUpdateEvent) -> subjects.RoleEventKind:
    if isinstance(event, TaskArtifactUpdateEvent):
        return "artifact"
    return "working" if event.status.state == TaskState.TASK_STATE_WORKING else "status"
