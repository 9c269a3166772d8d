"""GET /jobs/{id}/events over real HTTP: replay from the start, follow live, resume with Last-Event-ID."""

from __future__ import annotations

import httpx
from a2a.types import StreamResponse, TaskState
from httpx_sse import ServerSentEvent, aconnect_sse
from nats.js import JetStreamContext

from bus.contracts.codec import decode, encode
from bus.jetstream.events import follow_events, publish_event
from crews.jobs.control import finish_job
from crews.jobs.events import is_job_end, status_event
from crews.jobs.store import RedisJobStore
from tests.crews.api.conftest import submit

WORKING, COMPLETED = TaskState.TASK_STATE_WORKING, TaskState.TASK_STATE_COMPLETED


async def step_event(js: JetStreamContext, job: str, step: str, state: TaskState) -> int:
    task = f"{job}.{step}"
    return await publish_event(js, job, status_event(job, task, state), f"{task}:{state}")


async def stored(js: JetStreamContext, job: str) -> list[tuple[str, str]]:
    """(id, data) of every event of the job in the stream, up to its end, as the API should send them."""
    out = []
    events = follow_events(js, job)
    async for item in events:
        out.append((str(item.seq), encode(item.event).decode()))
        if is_job_end(job, item.event):
            break
    await events.aclose()  # type: ignore[attr-defined]
    return out


def pairs(events: list[ServerSentEvent]) -> list[tuple[str, str]]:
    return [(event.id, event.data) for event in events]


async def read_all(client: httpx.AsyncClient, job: str, last_id: str | None = None) -> list[ServerSentEvent]:
    """Every event the server sends before it ends the stream."""
    headers = {"Last-Event-ID": last_id} if last_id else {}
    async with aconnect_sse(client, "GET", f"/jobs/{job}/events", headers=headers) as source:
        assert source.response.status_code == 200
        assert source.response.headers["content-type"].startswith("text/event-stream")
        return [event async for event in source.aiter_sse()]


async def test_late_client_gets_every_event_from_the_start(
    client: httpx.AsyncClient, crew: str, js: JetStreamContext, store: RedisJobStore
) -> None:
    job = await submit(client)
    other = await submit(client)  # its events interleave and must not show up
    for step in ("research", "write"):
        await step_event(js, job, step, WORKING)
        await step_event(js, other, step, WORKING)
        await step_event(js, job, step, COMPLETED)
    await finish_job(js, store, job, "completed", output="The bees dance.")

    events = await read_all(client, job)

    assert pairs(events) == await stored(js, job)
    decoded = [decode(event.data.encode(), StreamResponse) for event in events]
    assert decoded[0].status_update.status.state == TaskState.TASK_STATE_SUBMITTED
    assert [e.status_update.task_id for e in decoded[1:5]] == [f"{job}.research"] * 2 + [f"{job}.write"] * 2
    assert decoded[-2].artifact_update.artifact.parts[0].text == "The bees dance."
    assert is_job_end(job, decoded[-1])
    assert all(e.status_update.context_id == job or e.artifact_update.context_id == job for e in decoded)


async def test_follows_live_events_and_ends_with_the_job(
    client: httpx.AsyncClient, crew: str, js: JetStreamContext, store: RedisJobStore
) -> None:
    job = await submit(client)
    async with aconnect_sse(client, "GET", f"/jobs/{job}/events") as source:
        events = source.aiter_sse()
        first = await anext(events)
        assert decode(first.data.encode(), StreamResponse).status_update.task_id == job

        seq = await step_event(js, job, "research", WORKING)
        assert (await anext(events)).id == str(seq)

        await finish_job(js, store, job, "failed", reason="step 'research' failed: no facts")
        rest = [event async for event in events]
    assert pairs([first, *rest])[-1] == (await stored(js, job))[-1]
    last = decode(rest[-1].data.encode(), StreamResponse).status_update
    assert last.status.state == TaskState.TASK_STATE_FAILED
    assert last.status.message.parts[0].text == "step 'research' failed: no facts"


async def test_reconnect_with_last_event_id_gets_exactly_the_missed_events(
    client: httpx.AsyncClient, crew: str, js: JetStreamContext, store: RedisJobStore
) -> None:
    job = await submit(client)
    other = await submit(client)
    await step_event(js, job, "research", WORKING)
    await step_event(js, job, "research", COMPLETED)

    async with aconnect_sse(client, "GET", f"/jobs/{job}/events") as source:
        events = source.aiter_sse()
        seen = [await anext(events) for _ in range(2)]  # then the connection drops

    await step_event(js, other, "research", WORKING)
    missed = await step_event(js, job, "write", WORKING)
    async with aconnect_sse(
        client, "GET", f"/jobs/{job}/events", headers={"Last-Event-ID": seen[-1].id}
    ) as source:
        events = source.aiter_sse()
        resumed = [await anext(events) for _ in range(2)]  # research completed, write working
        await step_event(js, job, "write", COMPLETED)
        await finish_job(js, store, job, "completed", output="done")
        resumed += [event async for event in events]

    everything = await stored(js, job)
    assert pairs(seen) == everything[:2]
    assert pairs(resumed) == everything[2:]
    assert str(missed) in [event.id for event in resumed]


async def test_ended_job_resumed_mid_way_then_at_its_end(
    client: httpx.AsyncClient, crew: str, js: JetStreamContext, store: RedisJobStore
) -> None:
    job = await submit(client)
    await step_event(js, job, "research", WORKING)
    await finish_job(js, store, job, "canceled", reason="cancelled on request")
    everything = await stored(js, job)

    tail = await read_all(client, job, last_id=everything[1][0])
    assert pairs(tail) == everything[2:]

    done = await client.get(f"/jobs/{job}/events", headers={"Last-Event-ID": everything[-1][0]})
    assert done.status_code == 204  # an EventSource stops reconnecting


async def test_bad_last_event_id_is_400(client: httpx.AsyncClient, crew: str) -> None:
    job = await submit(client)
    response = await client.get(f"/jobs/{job}/events", headers={"Last-Event-ID": "abc"})
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"
    assert "Last-Event-ID 'abc' is not an event id" in response.json()["message"]
