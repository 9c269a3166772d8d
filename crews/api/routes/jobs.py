"""Jobs: submit one to a crew (inputs checked first; ``Idempotency-Key`` makes repeats safe), read, list, cancel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Response

from crews.api.deps import Deps, Reader, Submitter
from crews.api.errors import IdempotencyConflict
from crews.api.limits import job_timeout
from crews.api.models import ErrorBody, JobList, JobRequest, JobSummary, JobView
from crews.jobs.control import cancel_job, owned_job, submit_job
from crews.jobs.store import JobStatus
from crews.plan.planner import plan

router = APIRouter(tags=["jobs"])

_401: dict[str, Any] = {"model": ErrorBody, "description": "No or unknown API key."}
_404: dict[str, Any] = {"model": ErrorBody, "description": "No job with that id."}

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Any unique text, e.g. a UUID: a repeat with the same key returns the first job.",
    ),
]


@router.post(
    "/crews/{name}/jobs",
    status_code=202,
    responses={
        401: _401,
        404: {"model": ErrorBody, "description": "No crew by that name."},
        409: {"model": ErrorBody, "description": "The Idempotency-Key was used for another crew or inputs."},
        422: {"model": ErrorBody, "description": "An input is missing or has the wrong type (it is named)."},
    },
)
async def submit(
    name: str,
    response: Response,
    deps: Deps,
    caller: Submitter,
    body: Annotated[JobRequest | None, Body()] = None,
    idempotency_key: IdempotencyKey = None,
) -> JobSummary:
    """Start a job of the crew; follow it at ``/jobs/{id}`` or ``/jobs/{id}/events``.

    The inputs are checked against the crew before anything is recorded, so a
    missing or mistyped input is a 422 that names it, not a failed job.
    """
    job_request = body or JobRequest()
    timeout_s = job_timeout(job_request.timeout_s, deps.crews.job_timeout_s, deps.limits.job_timeout_s)
    spec = await deps.store.get_crew(name)
    plan(spec, job_request.inputs)  # PlanError → 422
    await deps.limiter.admit_submit(caller)
    record = await submit_job(
        deps.js,
        deps.store,
        name,
        dict(job_request.inputs),
        idempotency_key=idempotency_key,
        timeout_s=timeout_s,
        owner=caller.name,
    )
    if record.crew != name or record.inputs != job_request.inputs:
        raise IdempotencyConflict(
            f"Idempotency-Key {idempotency_key!r} was first used for job {record.id} of crew "
            f"'{record.crew}' with other inputs: use a new key for a different request"
        )
    response.headers["Location"] = f"/jobs/{record.id}"
    return JobSummary.of(record)


@router.get("/jobs/{job}", responses={401: _401, 404: _404})
async def get_job(job: str, deps: Deps, caller: Reader) -> JobView:
    """Your job: status, plan with each step's state and output, usage per role, and why it failed."""
    record = await owned_job(deps.store, job, caller)
    return JobView.build(record, await deps.store.results(job), await deps.store.usage(job))


@router.get("/jobs", responses={401: _401})
async def list_jobs(
    deps: Deps,
    caller: Reader,
    crew: Annotated[str | None, Query(description="Only jobs of this crew.")] = None,
    status: Annotated[JobStatus | None, Query(description="Only jobs in this status.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most jobs to return.")] = 100,
) -> JobList:
    """Your recent jobs (an admin: everyone's), newest first (of the most recent ``CREWS_API_SCAN_JOBS``)."""
    records = await deps.store.list_jobs(limit=max(limit, deps.api.api_scan_jobs))
    found = [
        r
        for r in records
        if caller.owns(r.owner)
        and (crew is None or r.crew == crew)
        and (status is None or r.status == status)
    ]
    return JobList(
        jobs=[JobSummary.of(record, await deps.store.usage(record.id)) for record in found[:limit]]
    )


@router.post(
    "/jobs/{job}/cancel",
    responses={
        401: _401,
        404: _404,
        409: {"model": ErrorBody, "description": "The job has already ended."},
    },
)
async def cancel(job: str, deps: Deps, caller: Submitter) -> JobView:
    """Cancel your job that has not ended: no step is dispatched or started after this returns."""
    await owned_job(deps.store, job, caller)
    record = await cancel_job(deps.js, deps.store, job)
    return JobView.build(record, await deps.store.results(job), await deps.store.usage(job))
