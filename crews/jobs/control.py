"""Submit, cancel and end jobs: the store transition first, then the job-level event."""

from __future__ import annotations

import asyncio
from typing import Any

from nats.js import JetStreamContext
from opentelemetry import trace
from pydantic import BaseModel

from bus import subjects
from bus.jetstream.dispatch import publish_durable
from crews.errors import JobError, JobNotFound
from crews.jobs.events import publish_job_output, publish_job_status
from crews.jobs.owners import Principal
from crews.jobs.store import JobRecord, JobStatus, RedisJobStore, new_job_id

tracer = trace.get_tracer("crews")


class JobSubmission(BaseModel):
    """The message on ``crews.jobs.submit``."""

    job: str
    crew: str
    inputs: dict[str, Any] = {}
    owner: str = ""


async def submit_job(
    js: JetStreamContext,
    store: RedisJobStore,
    crew: str,
    inputs: dict[str, Any],
    *,
    idempotency_key: str | None = None,
    timeout_s: float = 3600.0,
    owner: str = "",
) -> JobRecord:
    """Create ``owner``'s job (or return the one its idempotency key already made) and publish it once."""
    await store.get_crew(crew)  # CrewNotFound before anything is recorded
    job = new_job_id()
    if idempotency_key:
        job = await store.claim_idempotency_key(idempotency_key, job, owner)
    with tracer.start_as_current_span("submit job", kind=trace.SpanKind.PRODUCER) as span:
        span.set_attribute("crews.job", job)
        span.set_attribute("crews.crew", crew)
        record = await store.create(job, crew, inputs, timeout_s, owner=owner)
        if record.status != "submitted":
            return record  # a repeat of a job a coordinator already took: nothing to publish again
        payload = (
            JobSubmission(job=job, crew=record.crew, inputs=record.inputs, owner=record.owner)
            .model_dump_json()
            .encode()
        )
        await publish_durable(js, subjects.JOBS_SUBMIT, payload, f"job:{job}", subjects.JOBS_STREAM)
        await publish_job_status(js, job, "submitted")
    return record


async def finish_job(
    js: JetStreamContext,
    store: RedisJobStore,
    job: str,
    status: JobStatus,
    *,
    reason: str = "",
    output: str = "",
    owner: str | None = None,
) -> bool:
    """End the job once (False when it had already ended), then publish its output and status.

    Should the publish fail (NATS down), the job stays due in the deadlines set
    and the coordinator's tick announces it again (``announce_end``). ``owner``: the job's, when
    the caller has read it (``RedisJobStore.finish``: one round trip fewer).
    """
    if not await store.finish(job, status, reason=reason, output=output, owner=owner):
        return False
    await _announce(js, store, job, status, reason, output)
    return True


async def announce_end(js: JetStreamContext, store: RedisJobStore, record: JobRecord) -> None:
    """Publish an ended job's output and status again (the event ids make repeats no-ops)."""
    await _announce(js, store, record.id, record.status, record.reason, record.output)


async def _announce(
    js: JetStreamContext, store: RedisJobStore, job: str, status: JobStatus, reason: str, output: str
) -> None:
    """The output, then the status: both sent before either ack is awaited (one connection keeps the
    order, as ``roles.step.events.StepEvents.result`` does for a step), then the deadline is forgotten."""
    if output:
        await asyncio.gather(publish_job_output(js, job, output), publish_job_status(js, job, status, reason))
    else:
        await publish_job_status(js, job, status, reason)
    await store.forget_deadline(job)


async def owned_job(store: RedisJobStore, job: str, principal: Principal) -> JobRecord:
    """The job, if ``principal`` may see it; ``JobNotFound`` otherwise (another's job is not shown to exist)."""
    record = await store.get(job)
    if not principal.owns(record.owner):
        raise JobNotFound(f"no job {job!r} of yours ({principal.name})")
    return record


async def cancel_job(js: JetStreamContext, store: RedisJobStore, job: str) -> JobRecord:
    """Cancel a job that has not ended; no step is dispatched or started after this returns."""
    record = await store.get(job)
    if record.terminal:
        raise JobError(f"job {job} has already ended ({record.status}): there is nothing to cancel")
    await finish_job(js, store, job, "canceled", reason="cancelled on request")
    return await store.get(job)
