"""Push notifications from more than one API process: every update once, in the order of the events.

Each API process takes the events in stream order from the shared cursor; the test runs two
APIs at once on one job that publishes many updates in quick succession (batches of both
processes overlap), and one that starts after the other has taken events whose cursor was left
behind, as by a process killed half way through a batch; and a cursor past the end of the
events stream (NATS lost its data, Redis kept the cursor) starts over instead of waiting.
"""

from __future__ import annotations

import httpx
import pytest
from a2a.client import ClientConfig, ClientFactory
from a2a.types import Part, TaskPushNotificationConfig
from nats.js import JetStreamContext

from bus.contracts.events import artifact_update
from bus.contracts.step import step_task_id
from bus.jetstream.events import publish_event
from crews.a2a.push.ingest import CURSOR_KEY
from crews.a2a.settings import A2ASettings
from crews.jobs.control import submit_job
from crews.jobs.store import RedisJobStore
from tests.crews.api.a2a.conftest import KEY
from tests.crews.api.a2a.webhook import Receiver
from tests.crews.api.conftest import StartApi

UPDATES = 150


async def publish_updates(js: JetStreamContext, job: str, names: list[str]) -> None:
    """One artifact per name, as the researcher's worker publishes its step's output."""
    task = step_task_id(job, "research")
    for name in names:
        event = artifact_update(task, job, Part(text=name, media_type="text/plain"), name=name)
        await publish_event(js, job, event, f"{job}:{name}", role=("digest", "researcher"))


async def until_artifacts(receiver: Receiver, count: int) -> list[str]:
    while len(receiver.artifacts()) < count:
        await receiver.next_delivery()
    return receiver.artifacts()


@pytest.fixture
def settings() -> A2ASettings:
    return A2ASettings(push_allow_private=True, push_backoff_s=0.05, push_backoff_max_s=0.2)


async def watch(api: httpx.AsyncClient, http: httpx.AsyncClient, job: str, receiver: Receiver) -> None:
    client = await ClientFactory(ClientConfig(httpx_client=http)).create_from_url(
        str(api.base_url).rstrip("/") + "/a2a/digest"
    )
    await client.create_task_push_notification_config(
        TaskPushNotificationConfig(task_id=job, id="hook", url=receiver.url)
    )


async def test_two_api_processes_deliver_every_update_once_in_order(
    start_api: StartApi,
    digest: str,
    js: JetStreamContext,
    store: RedisJobStore,
    http: httpx.AsyncClient,
    receiver: Receiver,
    settings: A2ASettings,
) -> None:
    job = (await submit_job(js, store, "digest", {"topic": "bees"})).id
    names = [f"part-{n:03d}" for n in range(UPDATES)]
    async with start_api(api_keys=(KEY,), a2a=settings) as one, start_api(api_keys=(KEY,), a2a=settings):
        await watch(one, http, job, receiver)
        await publish_updates(js, job, names)
        assert await until_artifacts(receiver, UPDATES) == names
    deliveries = [headers["x-crews-delivery"] for headers, _ in receiver.seen]
    assert len(deliveries) == UPDATES == len(set(deliveries))  # none twice, none refused and repeated


async def test_events_taken_before_the_cursor_moved_are_taken_again_without_repeating_an_update(
    start_api: StartApi,
    digest: str,
    js: JetStreamContext,
    store: RedisJobStore,
    http: httpx.AsyncClient,
    receiver: Receiver,
    settings: A2ASettings,
) -> None:
    job = (await submit_job(js, store, "digest", {"topic": "bees"})).id
    async with start_api(api_keys=(KEY,), a2a=settings) as api:
        await watch(api, http, job, receiver)
        behind = int(await store.redis.get(CURSOR_KEY) or 0)
        await publish_updates(js, job, ["first", "second"])
        assert await until_artifacts(receiver, 2) == ["first", "second"]
    assert int(await store.redis.get(CURSOR_KEY) or 0) > behind  # it moved past what was taken
    await store.redis.set(CURSOR_KEY, behind)  # as if that process had been killed before moving it
    await publish_updates(js, job, ["third"])
    async with start_api(api_keys=(KEY,), a2a=settings):
        assert await until_artifacts(receiver, 3) == ["first", "second", "third"]
    assert len(receiver.seen) == 3


async def test_a_cursor_past_the_end_of_a_remade_events_stream_starts_over_and_skips_nothing(
    start_api: StartApi,
    digest: str,
    js: JetStreamContext,
    store: RedisJobStore,
    http: httpx.AsyncClient,
    receiver: Receiver,
    settings: A2ASettings,
) -> None:
    job = (await submit_job(js, store, "digest", {"topic": "bees"})).id
    await store.redis.set(CURSOR_KEY, 10**9)  # from a NATS whose stream is gone; Redis kept it
    async with start_api(api_keys=(KEY,), a2a=settings) as api:
        await watch(api, http, job, receiver)
        await publish_updates(js, job, ["after the reset"])
        assert await until_artifacts(receiver, 1) == ["after the reset"]
    assert int(await store.redis.get(CURSOR_KEY) or 0) < 10**9
