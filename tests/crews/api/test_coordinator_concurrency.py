"""A coordinator asks for as many submissions and step ends at once as its settings say.

Each handling waits on Redis and NATS, so a coordinator that takes few at a time
leaves the workers it feeds waiting for dispatches (bench/FINDINGS.md, session 18).
The test reads the coordinator's pull requests on the wire, as nats-server gets them.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from bus import subjects
from bus.settings import BusSettings
from crews.coordinator.coordinator import EVENTS_CONSUMER, Coordinator
from crews.coordinator.settings import CrewsSettings
from crews.jobs.store import RedisJobStore
from tests.servers import ManagedServer


async def test_the_coordinator_asks_for_as_many_messages_as_its_settings_allow(
    nc: NATS,
    js: JetStreamContext,
    store: RedisJobStore,
    nats_server: ManagedServer,
    redis_server: ManagedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CREWS_COORDINATOR_EVENT_CONCURRENCY", "24")
    monkeypatch.setenv("CREWS_COORDINATOR_SUBMISSION_CONCURRENCY", "12")
    settings = CrewsSettings(redis_url=redis_server.url)
    asked: dict[str, list[int]] = {EVENTS_CONSUMER: [], subjects.JOBS_CONSUMER: []}
    both = asyncio.Event()

    async def seen(msg: Msg) -> None:
        asked[msg.subject.rsplit(".", 1)[1]].append(json.loads(msg.data)["batch"])
        if all(asked.values()):
            both.set()

    requests = "$JS.API.CONSUMER.MSG.NEXT"
    await nc.subscribe(f"{requests}.{subjects.EVENTS_STREAM}.{EVENTS_CONSUMER}", cb=seen)
    await nc.subscribe(f"{requests}.{subjects.JOBS_STREAM}.{subjects.JOBS_CONSUMER}", cb=seen)
    await nc.flush()

    coordinator = Coordinator(js, store, settings, BusSettings(nats_url=nats_server.url))
    ready = asyncio.Event()
    task = asyncio.create_task(coordinator.run(ready))
    try:
        await asyncio.wait_for(both.wait(), 30)  # the coordinator's first pull request on each consumer
        assert asked[EVENTS_CONSUMER][0] == 24
        assert asked[subjects.JOBS_CONSUMER][0] == 12
    finally:
        coordinator.stop()
        await task


def test_the_defaults_leave_room_for_the_workers_of_a_busy_crew() -> None:
    """Above the 48 slots of three roles with four default workers each; no lower than before (8 and 4)."""
    settings = CrewsSettings()
    assert settings.coordinator_event_concurrency >= 48
    assert settings.coordinator_submission_concurrency >= 4
