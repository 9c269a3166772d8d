"""Submit a job: record it, then hand it to a coordinator over ``crews.jobs.submit``."""

from __future__ import annotations

from typing import Any

from nats.js import JetStreamContext
from opentelemetry import trace
from pydantic import BaseModel

from bus import subjects
from bus.dispatch import publish_durable
from crews.job_events import publish_job_status
from crews.jobs import JobRecord, RedisJobStore, new_job_id

tracer = trace.get_tracer("crews")


class JobSubmission(BaseModel):
    """The message on ``crews.jobs.submit``."""

    job: str
    crew: str
    inputs: dict[str, Any] = {}


async def submit_job(
    js: JetStreamContext,
    store: RedisJobStore,
    crew: str,
    inputs: dict[str, Any],
    *,
    idempotency_key: str | None = None,
    timeout_s: float = 3600.0,
) -> JobRecord:
    """Create the job (or return the one this idempotency key already made) and publish it once."""
    await store.get_crew(crew)  # CrewNotFound before anything is recorded
    job = new_job_id()
    if idempotency_key:
        job = await store.claim_idempotency_key(idempotency_key, job)
    with tracer.start_as_current_span("submit job", kind=trace.SpanKind.PRODUCER) as span:
        span.set_attribute("crews.job", job)
        span.set_attribute("crews.crew", crew)
        record = await store.create(job, crew, inputs, timeout_s)
        payload = JobSubmission(job=job, crew=record.crew, inputs=record.inputs).model_dump_json().encode()
        await publish_durable(js, subjects.JOBS_SUBMIT, payload, f"job:{job}", subjects.JOBS_STREAM)
        await publish_job_status(js, job, "submitted")
    return record
