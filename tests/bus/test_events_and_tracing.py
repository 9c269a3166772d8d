"""Job events replay from the start (or a sequence) and follow; trace context crosses a hop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from a2a.types import TaskState, TaskStatus, TaskStatusUpdateEvent
from nats.aio.client import Client as NATS
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bus import subjects
from bus.jetstream.dispatch import publish_durable
from bus.jetstream.events import JobEvent, follow_events, last_event_seq, publish_event
from bus.jetstream.streams import ensure_role_consumer, ensure_streams
from bus.jetstream.work_loop import Delivery, WorkLoop
from bus.settings import BusSettings


def status(job: str, step: str, state: TaskState) -> TaskStatusUpdateEvent:
    """A status of ``step`` of ``job`` (task ``<job>.<step>``), or of the job itself (``step`` empty)."""
    task = f"{job}.{step}" if step else job
    return TaskStatusUpdateEvent(task_id=task, context_id=job, status=TaskStatus(state=state))


async def take(events: AsyncIterator[JobEvent], n: int) -> list[JobEvent]:
    return [await asyncio.wait_for(anext(events), 10) for _ in range(n)]


async def test_late_subscriber_replays_from_start_then_follows(nc: NATS) -> None:
    js = nc.jetstream()
    await ensure_streams(js, BusSettings())
    await publish_event(js, "job1", status("job1", "a", TaskState.TASK_STATE_WORKING), "e1")
    await publish_event(js, "job2", status("job2", "x", TaskState.TASK_STATE_WORKING), "x1")
    await publish_event(js, "job1", status("job1", "a", TaskState.TASK_STATE_COMPLETED), "e2")
    await publish_event(js, "job1", status("job1", "a", TaskState.TASK_STATE_COMPLETED), "e2")  # duplicate

    events = follow_events(js, "job1")
    replayed = await take(events, 2)
    states = [e.event.status_update.status.state for e in replayed]
    assert states == [TaskState.TASK_STATE_WORKING, TaskState.TASK_STATE_COMPLETED]
    live_seq = await publish_event(js, "job1", status("job1", "b", TaskState.TASK_STATE_WORKING), "e3")
    [live] = await take(events, 1)
    assert (live.seq, live.event.status_update.task_id) == (live_seq, "job1.b")
    await events.aclose()

    resumed = follow_events(js, "job1", after_seq=replayed[0].seq)
    assert [e.seq for e in await take(resumed, 2)] == [replayed[1].seq, live_seq]
    await resumed.aclose()


async def test_followers_get_only_events_that_fit_their_subject(nc: NATS) -> None:
    """A role's subject carries its steps' events, never the job's own status nor another job's events."""
    js = nc.jetstream()
    await ensure_streams(js, BusSettings())
    writer = ("research", "writer")
    await publish_event(js, "job5", status("job5", "", TaskState.TASK_STATE_WORKING), "j1")
    await publish_event(js, "job5", status("job5", "write", TaskState.TASK_STATE_WORKING), "w1", role=writer)
    await publish_event(js, "job5", status("job5", "", TaskState.TASK_STATE_FAILED), "forged1", role=writer)
    await publish_event(
        js, "job5", status("job6", "write", TaskState.TASK_STATE_FAILED), "forged2", role=writer
    )
    approval = status("job5", "write", TaskState.TASK_STATE_WORKING)  # the API's decision: the job's subject
    await publish_event(js, "job5", approval, "a1")
    last = await publish_event(js, "job5", status("job5", "", TaskState.TASK_STATE_COMPLETED), "j2")

    events = follow_events(js, "job5")
    got = await take(events, 4)
    await events.aclose()
    assert [
        (e.event.status_update.task_id, TaskState.Name(e.event.status_update.status.state)) for e in got
    ] == [
        ("job5", "TASK_STATE_WORKING"),
        ("job5.write", "TASK_STATE_WORKING"),
        ("job5.write", "TASK_STATE_WORKING"),
        ("job5", "TASK_STATE_COMPLETED"),
    ]
    assert got[-1].seq == last
    assert await last_event_seq(js, "job5") == last


async def test_trace_context_crosses_a_publish_consume_hop(nc: NATS, spans: InMemorySpanExporter) -> None:
    js = nc.jetstream()
    settings = BusSettings()
    await ensure_streams(js, settings)
    consumer = await ensure_role_consumer(js, "c", "r", settings)
    handled = asyncio.Event()
    inside: list[int] = []

    async def handle(delivery: Delivery) -> None:
        inside.append(trace.get_current_span().get_span_context().trace_id)
        handled.set()

    loop = WorkLoop(js, subjects.TASKS_STREAM, consumer, handle)
    runner = asyncio.create_task(loop.run())
    with trace.get_tracer("test").start_as_current_span("submit") as parent:
        await publish_durable(js, subjects.task_subject("c", "r"), b"{}", "t1", subjects.TASKS_STREAM)
    await asyncio.wait_for(handled.wait(), 10)
    loop.stop()
    await runner
    trace_id = parent.get_span_context().trace_id
    assert inside == [trace_id]
    [consumed] = [s for s in spans.get_finished_spans() if s.name == "process crews.tasks.c.r"]
    assert consumed.context is not None and consumed.context.trace_id == trace_id
    assert consumed.parent is not None and consumed.parent.span_id == parent.get_span_context().span_id
