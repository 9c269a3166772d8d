"""A job submitted over HTTP runs with a real coordinator; the test takes each step as a role worker would."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable

import httpx
from a2a.types import SendMessageRequest, StreamResponse, TaskState
from httpx_sse import aconnect_sse
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from bus import subjects
from bus.contracts.codec import decode, encode
from bus.contracts.step import from_request
from bus.jetstream.events import publish_event
from bus.jetstream.streams import ensure_role_consumer, ensure_streams, work_consumer_config
from bus.jetstream.work_loop import Delivery
from bus.settings import BusSettings
from crews.coordinator.coordinator import EVENTS_CONSUMER, Coordinator
from crews.coordinator.settings import CrewsSettings
from crews.jobs.control import JobSubmission
from crews.jobs.events import status_event
from crews.jobs.store import RedisJobStore, StepResult, job_keys
from tests.crews.api.conftest import submit
from tests.servers import ManagedServer
from tests.waits import eventually


async def take_step(js: JetStreamContext, store: RedisJobStore, crew: str, role: str, output: str) -> str:
    """Take the role's next step from its queue, record its result and usage, report it; returns the step."""
    sub = await js.pull_subscribe_bind(
        durable=subjects.role_consumer(crew, role), stream=subjects.TASKS_STREAM
    )
    [msg] = await sub.fetch(1, timeout=30)
    work = from_request(decode(msg.data, SendMessageRequest))
    working = status_event(work.job, work.task_id, TaskState.TASK_STATE_WORKING)
    await publish_event(js, work.job, working, f"{work.task_id}:working:1", role=(crew, role))
    result = StepResult(output=output, role=role, worker="test-worker")
    await store.redis.hsetnx(job_keys(work.job).results, work.step, result.model_dump_json())
    await store.redis.hincrby(job_keys(work.job).usage, f"{role}:input_tokens", 50)
    await store.redis.hincrby(job_keys(work.job).usage, f"{role}:output_tokens", len(output))
    await store.redis.hincrby(job_keys(work.job).usage, f"{role}:calls", 1)
    done = status_event(work.job, work.task_id, TaskState.TASK_STATE_COMPLETED)
    await publish_event(js, work.job, done, f"{work.task_id}:completed", role=(crew, role))
    await msg.ack()
    await sub.unsubscribe()
    return work.step


async def test_a_job_runs_to_its_end_through_the_api(
    client: httpx.AsyncClient, crew: str, js: JetStreamContext, store: RedisJobStore, coordinator: Coordinator
) -> None:
    for role in ("researcher", "writer"):
        await ensure_role_consumer(js, crew, role, BusSettings())
    job = await submit(client)

    async with aconnect_sse(client, "GET", f"/jobs/{job}/events") as source:
        events = source.aiter_sse()
        assert await take_step(js, store, crew, "researcher", "- bees dance") == "research"
        assert await take_step(js, store, crew, "writer", "Bees dance to talk.") == "write"
        received = [decode(event.data.encode(), StreamResponse) async for event in events]

    states = [
        (e.status_update.task_id.removeprefix(job).lstrip("."), TaskState.Name(e.status_update.status.state))
        for e in received
        if e.HasField("status_update")
    ]
    assert states == [
        ("", "TASK_STATE_SUBMITTED"),
        ("", "TASK_STATE_WORKING"),
        ("research", "TASK_STATE_WORKING"),
        ("research", "TASK_STATE_COMPLETED"),
        ("write", "TASK_STATE_WORKING"),
        ("write", "TASK_STATE_COMPLETED"),
        ("", "TASK_STATE_COMPLETED"),
    ]

    got = (await client.get(f"/jobs/{job}")).json()
    assert (got["status"], got["output"], got["reason"]) == ("completed", "Bees dance to talk.", "")
    assert [(s["id"], s["role"], s["state"], s["output"]) for s in got["steps"]] == [
        ("research", "researcher", "completed", "- bees dance"),
        ("write", "writer", "completed", "Bees dance to talk."),
    ]
    assert got["usage"]["writer"] == {"input_tokens": 50, "output_tokens": 19, "calls": 1, "cost_usd": 0.0}
    assert got["tokens"] == 50 + 12 + 50 + 19

    cancel = await client.post(f"/jobs/{job}/cancel", json={})
    assert cancel.status_code == 409
    assert "already ended (completed)" in cancel.json()["message"]


async def test_a_step_status_from_another_roles_subject_is_ignored(
    client: httpx.AsyncClient, crew: str, js: JetStreamContext, store: RedisJobStore, coordinator: Coordinator
) -> None:
    """A role can publish only on its own subject; the coordinator heeds a step's status only from its role."""
    for role in ("researcher", "writer"):
        await ensure_role_consumer(js, crew, role, BusSettings())
    job = await submit(client)
    await eventually(lambda: _step_state(store, job, "research", "dispatched"), 10, "research dispatched")
    forged = status_event(job, f"{job}.research", TaskState.TASK_STATE_FAILED, "forged")
    for publisher in ((crew, "writer"), ("other-crew", "researcher")):
        await publish_event(js, job, forged, f"{job}.research:failed:{publisher}", role=publisher)

    async def refused() -> bool:
        return sum(coordinator.refused_events.values()) == 2

    await eventually(refused, 10, "both forged statuses refused")
    assert dict(coordinator.refused_events) == {f"{crew}.writer": 1, "other-crew.researcher": 1}
    record = await store.get(job)
    assert (record.status, record.steps["research"]) == ("running", "dispatched")  # neither failed the job

    assert (
        await take_step(js, store, crew, "researcher", "- bees dance") == "research"
    )  # its own role: heeded
    assert await take_step(js, store, crew, "writer", "Bees dance to talk.") == "write"
    await eventually(lambda: _status(store, job, "completed"), 10, "job completed")
    assert sum(coordinator.refused_events.values()) == 2


async def test_the_first_event_of_a_job_it_started_reads_the_job_once(
    client: httpx.AsyncClient,
    crew: str,
    js: JetStreamContext,
    store: RedisJobStore,
    nats_server: ManagedServer,
    redis_server: ManagedServer,
) -> None:
    """The coordinator keeps the step assignments of the plan it stores: a step's first COMPLETED reads
    the job as one pass over it does, not its plan first to check who published the event."""
    coordinator = Coordinator(
        js, store, CrewsSettings(redis_url=redis_server.url), BusSettings(nats_url=nats_server.url)
    )
    await coordinator.setup()
    job = await submit(client)
    submission = JobSubmission(job=job, crew=crew, inputs={"topic": "bees"}).model_dump_json()
    await coordinator.on_submission(Delivery("s", submission.encode(), {}, 1, 5, 1))
    result = StepResult(output="- bees dance", role="researcher")
    await store.redis.hsetnx(job_keys(job).results, "research", result.model_dump_json())
    one_pass = await _job_reads(store, store.get_with_results(job))
    completed = status_event(job, f"{job}.research", TaskState.TASK_STATE_COMPLETED)
    delivery = Delivery(
        subjects.role_events_subject(job, crew, "researcher", "status"),
        encode(StreamResponse(status_update=completed)),
        {},
        1,
        5,
        2,
    )
    assert await _job_reads(store, coordinator.on_event(delivery)) == one_pass
    assert (await store.get(job)).steps == {"research": "completed", "write": "dispatched"}  # it was heeded


async def _job_reads(store: RedisJobStore, call: Awaitable[object]) -> int:
    """How many hashes ``call`` read whole (a job's state, results and progress are each one)."""

    async def hgetalls() -> int:
        stats = await store.redis.info("commandstats")
        return int(stats.get("cmdstat_hgetall", {}).get("calls", 0))

    before = await hgetalls()
    await call
    return await hgetalls() - before


async def _step_state(store: RedisJobStore, job: str, step: str, state: str) -> bool:
    return (await store.get(job)).steps.get(step) == state


async def _status(store: RedisJobStore, job: str, status: str) -> bool:
    return (await store.get(job)).status == status


async def test_the_coordinator_consumes_role_events_only_and_narrows_an_older_durable(
    js: JetStreamContext, store: RedisJobStore, nats_server: ManagedServer, redis_server: ManagedServer
) -> None:
    """Its own job-level events (4 a job) and its steps' WORKING are never fetched; a durable made with the
    old filter is narrowed."""
    bus = BusSettings(nats_url=nats_server.url)
    await ensure_streams(js, bus)
    with contextlib.suppress(NotFoundError):
        await js.delete_consumer(subjects.EVENTS_STREAM, EVENTS_CONSUMER)
    await js.add_consumer(
        subjects.EVENTS_STREAM, work_consumer_config(EVENTS_CONSUMER, subjects.EVENTS_ALL, bus)
    )

    await Coordinator(js, store, CrewsSettings(redis_url=redis_server.url), bus).setup()

    info = await js.consumer_info(subjects.EVENTS_STREAM, EVENTS_CONSUMER)
    assert info.config.filter_subject == subjects.ROLE_STATUSES_ALL
    job_level = status_event("j-own", "j-own", TaskState.TASK_STATE_WORKING)
    await publish_event(js, "j-own", job_level, "j-own:job:running")
    started = status_event("j-own", "j-own.a", TaskState.TASK_STATE_WORKING)  # its start is in Redis
    await publish_event(js, "j-own", started, "j-own.a:working:1", role=("c", "r"))
    done = status_event("j-own", "j-own.a", TaskState.TASK_STATE_COMPLETED)
    await publish_event(js, "j-own", done, "j-own.a:completed", role=("c", "r"))
    sub = await js.pull_subscribe_bind(durable=EVENTS_CONSUMER, stream=subjects.EVENTS_STREAM)
    msgs = await sub.fetch(10, timeout=1)
    assert [m.subject for m in msgs] == [subjects.role_events_subject("j-own", "c", "r")]
    assert decode(msgs[0].data, StreamResponse).status_update.status.state == TaskState.TASK_STATE_COMPLETED
    for msg in msgs:
        await msg.ack()
    await sub.unsubscribe()
