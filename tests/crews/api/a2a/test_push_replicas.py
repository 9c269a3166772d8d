"""Push notifications from more than one API process: every update once, in the order of the events.

Each API process takes the events in stream order from the shared cursor; the test runs two
APIs at once on one job that publishes many updates in quick succession (batches of both
processes overlap), and one that starts after the other has taken events whose cursor was left
behind, as by a process killed half way through a batch; and a cursor past the end of the
events stream (NATS lost its data, Redis kept the cursor) starts over instead of waiting.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

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
SETTINGS = A2ASettings(push_allow_private=True, push_backoff_s=0.05, push_backoff_max_s=0.2)


@dataclass
class Hooks:
    """What every test here uses: APIs to start, the bus and store, and one webhook receiver."""

    start_api: StartApi
    js: JetStreamContext
    store: RedisJobStore
    http: httpx.AsyncClient
    receiver: Receiver

    def api(self) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        return self.start_api(api_keys=(KEY,), a2a=SETTINGS)

    async def job(self) -> str:
        return (await submit_job(self.js, self.store, "digest", {"topic": "bees"})).id

    async def watch(self, api: httpx.AsyncClient, job: str) -> None:
        """Register the receiver as ``job``'s webhook through ``api``."""
        client = await ClientFactory(ClientConfig(httpx_client=self.http)).create_from_url(
            str(api.base_url).rstrip("/") + "/a2a/digest"
        )
        await client.create_task_push_notification_config(
            TaskPushNotificationConfig(task_id=job, id="hook", url=self.receiver.url)
        )

    async def publish(self, job: str, names: list[str]) -> None:
        """One artifact per name, as the researcher's worker publishes its step's output."""
        task = step_task_id(job, "research")
        for name in names:
            event = artifact_update(task, job, Part(text=name, media_type="text/plain"), name=name)
            await publish_event(self.js, job, event, f"{job}:{name}", role=("digest", "researcher"))

    async def until_artifacts(self, count: int) -> list[str]:
        while len(self.receiver.artifacts()) < count:
            await self.receiver.next_delivery()
        return self.receiver.artifacts()


@pytest.fixture
def hooks(
    start_api: StartApi,
    digest: str,
    js: JetStreamContext,
    store: RedisJobStore,
    http: httpx.AsyncClient,
    receiver: Receiver,
) -> Hooks:
    return Hooks(start_api, js, store, http, receiver)


async def test_two_api_processes_deliver_every_update_once_in_order(hooks: Hooks) -> None:
    job = await hooks.job()
    names = [f"part-{n:03d}" for n in range(UPDATES)]
    async with hooks.api() as one, hooks.api():
        await hooks.watch(one, job)
        await hooks.publish(job, names)
        assert await hooks.until_artifacts(UPDATES) == names
    deliveries = [headers["x-crews-delivery"] for headers, _ in hooks.receiver.seen]
    assert len(deliveries) == UPDATES == len(set(deliveries))  # none twice, none refused and repeated


async def test_events_taken_before_the_cursor_moved_are_taken_again_without_repeating_an_update(
    hooks: Hooks,
) -> None:
    job = await hooks.job()
    async with hooks.api() as api:
        await hooks.watch(api, job)
        behind = int(await hooks.store.redis.get(CURSOR_KEY) or 0)
        await hooks.publish(job, ["first", "second"])
        assert await hooks.until_artifacts(2) == ["first", "second"]
    assert int(await hooks.store.redis.get(CURSOR_KEY) or 0) > behind  # it moved past what was taken
    await hooks.store.redis.set(CURSOR_KEY, behind)  # as if that process had been killed before moving it
    await hooks.publish(job, ["third"])
    async with hooks.api():
        assert await hooks.until_artifacts(3) == ["first", "second", "third"]
    assert len(hooks.receiver.seen) == 3


async def test_a_cursor_past_the_end_of_a_remade_events_stream_starts_over_and_skips_nothing(
    hooks: Hooks,
) -> None:
    job = await hooks.job()
    await hooks.store.redis.set(CURSOR_KEY, 10**9)  # from a NATS whose stream is gone; Redis kept it
    async with hooks.api() as api:
        await hooks.watch(api, job)
        await hooks.publish(job, ["after the reset"])
        assert await hooks.until_artifacts(1) == ["after the reset"]
    assert int(await hooks.store.redis.get(CURSOR_KEY) or 0) < 10**9
