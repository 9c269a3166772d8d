"""Create (or update) the JetStream streams and the per-role durable pull consumers.

Every stream keeps ``CREWS_STREAM_REPLICAS`` copies (1 on one server; 3 in a
NATS cluster, so the streams and their consumers, which take the stream's
replica count, survive the loss of one server). An existing stream is brought
to the configured count.
"""

from __future__ import annotations

import asyncio
import logging

from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

from bus import subjects
from bus.settings import BusSettings

DUPLICATE_WINDOW_S = 24 * 3600.0
STREAM_NAMES = (
    subjects.JOBS_STREAM,
    subjects.TASKS_STREAM,
    subjects.EVENTS_STREAM,
    subjects.DEAD_LETTER_STREAM,
)
log = logging.getLogger(__name__)


def stream_configs(settings: BusSettings) -> list[StreamConfig]:
    """The streams of docs/architecture.md ("Subjects and streams") plus the dead-letter stream."""
    return [
        _work_queue(subjects.JOBS_STREAM, subjects.JOBS_SUBMIT, settings.stream_replicas),
        _work_queue(subjects.TASKS_STREAM, subjects.TASKS_ALL, settings.stream_replicas),
        StreamConfig(
            name=subjects.EVENTS_STREAM,
            subjects=[subjects.EVENTS_ALL, subjects.SIGNALS_ALL],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=settings.events_max_age_s,
            duplicate_window=120.0,
            num_replicas=settings.stream_replicas,
        ),
        StreamConfig(
            name=subjects.DEAD_LETTER_STREAM,
            subjects=[subjects.DEAD_ALL],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=settings.dead_max_age_s,
            duplicate_window=DUPLICATE_WINDOW_S,
            num_replicas=settings.stream_replicas,
        ),
    ]


def _work_queue(name: str, subject: str, replicas: int) -> StreamConfig:
    return StreamConfig(
        name=name,
        subjects=[subject],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        discard=DiscardPolicy.NEW,
        duplicate_window=DUPLICATE_WINDOW_S,
        num_replicas=replicas,
    )


async def ensure_streams(js: JetStreamContext, settings: BusSettings) -> None:
    """Create every stream, or bring an existing one to the current config."""
    for config in stream_configs(settings):
        try:
            await js.stream_info(config.name or "")
        except NotFoundError:
            await js.add_stream(config)
        else:
            await js.update_stream(config)


async def wait_for_streams(js: JetStreamContext, poll_s: float = 0.5) -> None:
    """Wait until every stream exists (created by a process that manages them, e.g. the coordinator)."""
    for name in STREAM_NAMES:
        while True:
            try:
                await js.stream_info(name)
                break
            except NotFoundError:
                log.info("waiting for stream %s (the coordinator creates it)", name)
                await asyncio.sleep(poll_s)


async def prepare_streams(js: JetStreamContext, settings: BusSettings) -> None:
    """Create the streams when this process manages them (``CREWS_MANAGE_STREAMS``), else wait for them."""
    if settings.manage_streams:
        await ensure_streams(js, settings)
    else:
        await wait_for_streams(js)


def work_consumer_config(name: str, filter_subject: str, settings: BusSettings) -> ConsumerConfig:
    """A durable pull consumer with explicit acks and the configured redelivery limits."""
    return ConsumerConfig(
        name=name,
        durable_name=name,
        filter_subject=filter_subject,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=settings.ack_wait_s,
        max_deliver=settings.max_deliver,
        max_ack_pending=settings.max_ack_pending,
    )


async def ensure_role_consumer(js: JetStreamContext, crew: str, role: str, settings: BusSettings) -> str:
    """The durable consumer that every worker of ``crew/role`` shares; returns its name."""
    name = subjects.role_consumer(crew, role)
    config = work_consumer_config(name, subjects.task_subject(crew, role), settings)
    await js.add_consumer(subjects.TASKS_STREAM, config)
    return name


async def ensure_jobs_consumer(js: JetStreamContext, settings: BusSettings) -> str:
    """The durable consumer that coordinators share for job submissions."""
    config = work_consumer_config(subjects.JOBS_CONSUMER, subjects.JOBS_SUBMIT, settings)
    await js.add_consumer(subjects.JOBS_STREAM, config)
    return subjects.JOBS_CONSUMER
