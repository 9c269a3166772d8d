"""``GET /jobs/{id}/events``: the job's A2A events as Server-Sent Events, from the start, then live.

Each SSE event's ``id`` is the event's sequence in the ``CREWS_EVENTS`` stream
and its ``data`` the A2A ``StreamResponse`` JSON (a status or an artifact
update). A client that reconnects with ``Last-Event-ID`` (browsers do it by
themselves) gets exactly the events after that one. The stream ends after the
job-level terminal status (task id = job id; completed, failed or canceled);
once a job has ended and the client has every event, the answer is 204, which
tells an ``EventSource`` to stop reconnecting.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Annotated, Any

from fastapi import APIRouter, Header, Response
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from sse_starlette import EventSourceResponse, ServerSentEvent

from bus import subjects
from bus.contracts.codec import encode
from bus.jetstream.events import follow_events
from crews.api.deps import Deps, Reader
from crews.api.errors import BadRequest
from crews.api.models import ErrorBody
from crews.jobs.control import owned_job
from crews.jobs.events import is_job_end

router = APIRouter(tags=["jobs"])

_EXAMPLE = (
    'id: 41\ndata: {"statusUpdate":{"taskId":"9b2f0c4e1d7a43a8b6c1","contextId":"9b2f0c4e1d7a43a8b6c1",'
    '"status":{"state":"TASK_STATE_SUBMITTED","timestamp":"2026-01-01T00:00:00Z"}}}\n\n'
)
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The events, as text/event-stream; each data line is one A2A StreamResponse.",
        "content": {"text/event-stream": {"schema": {"type": "string"}, "example": _EXAMPLE}},
    },
    204: {"description": "The job has ended and the client has all its events: stop reconnecting."},
    400: {"model": ErrorBody, "description": "Last-Event-ID is not an event id this endpoint sent."},
    401: {"model": ErrorBody, "description": "No or unknown API key."},
    404: {"model": ErrorBody, "description": "No job with that id."},
}

LastEventId = Annotated[
    str | None,
    Header(alias="Last-Event-ID", description="Resume after this event (the id of the last event received)."),
]


def parse_last_event_id(value: str | None) -> int:
    if value is None or not value.strip():
        return 0
    if not value.strip().isdigit():
        raise BadRequest(
            f"Last-Event-ID {value!r} is not an event id: send the id of the last event received (a number)"
        )
    return int(value)


async def last_sequence(js: JetStreamContext, job: str) -> int:
    """The stream sequence of the job's latest event (0: none kept)."""
    try:
        message = await js.get_last_msg(subjects.EVENTS_STREAM, subjects.job_events_filter(job))
    except NotFoundError:
        return 0
    return int(message.seq or 0)


async def sse_events(
    js: JetStreamContext, job: str, after_seq: int, until_seq: int | None
) -> AsyncIterator[ServerSentEvent]:
    """The job's events after ``after_seq``, up to its end (or ``until_seq``, for a job already ended)."""
    events = follow_events(js, job, after_seq)
    assert isinstance(events, AsyncGenerator)
    async with aclosing(events):
        async for item in events:
            yield ServerSentEvent(data=encode(item.event).decode(), id=str(item.seq))
            if is_job_end(job, item.event) or (until_seq is not None and item.seq >= until_seq):
                return


@router.get("/jobs/{job}/events", response_class=EventSourceResponse, responses=_RESPONSES)
async def job_events(job: str, deps: Deps, caller: Reader, last_event_id: LastEventId = None) -> Response:
    """Your job's events from the start (or after ``Last-Event-ID``), then live until the job ends."""
    after_seq = parse_last_event_id(last_event_id)
    record = await owned_job(deps.store, job, caller)
    until_seq = None
    if record.terminal:
        until_seq = await last_sequence(deps.js, job)
        if until_seq <= after_seq:
            return Response(status_code=204)
    stream = deps.limiter.open_stream(caller)  # 429 when the principal holds too many streams
    return EventSourceResponse(
        deps.limiter.held(stream, sse_events(deps.js, job, after_seq, until_seq)),
        ping=deps.api.api_sse_ping_s,
    )
