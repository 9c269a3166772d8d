"""A worker killed on a step's last allowed delivery: the sweeper turns the server's advisory into a dead letter."""

from __future__ import annotations

import asyncio
import json

from nats.aio.client import Client as NATS

from bus import subjects
from bus.jetstream.dead_letters import DeadLetter, ensure_advisory_capture, sweep_once
from bus.jetstream.dispatch import publish_durable
from bus.jetstream.streams import ensure_role_consumer, ensure_streams
from bus.settings import BusSettings
from tests.bus.helpers import next_message, start_worker, stop_worker
from tests.servers import ManagedServer


async def test_killed_on_the_last_delivery_is_dead_lettered_not_lost(
    nc: NATS, nats_server: ManagedServer, redis_server: ManagedServer
) -> None:
    settings = BusSettings(max_deliver=1, ack_wait_s=1.0)
    js = nc.jetstream()
    await ensure_streams(js, settings)
    await ensure_advisory_capture(js, [subjects.TASKS_STREAM])
    consumer = await ensure_role_consumer(js, "c", "r", settings)
    worker = start_worker(nats_server.url, redis_server.url, subjects.TASKS_STREAM, consumer, "A")
    dead: list[DeadLetter] = []

    async def on_dead(letter: DeadLetter) -> None:
        dead.append(letter)

    async def sweep_until_dead() -> None:
        while not dead:
            await sweep_once(js, on_dead)  # waits on the advisories stream for each round

    try:
        started = asyncio.ensure_future(next_message(nc, "test.started.lost"))
        await nc.flush()
        payload = json.dumps({"id": "lost", "mode": "block_first"}).encode()
        await publish_durable(js, subjects.task_subject("c", "r"), payload, "lost", subjects.TASKS_STREAM)
        await started
        stop_worker(worker)  # SIGKILL on the only delivery the step is allowed
        await asyncio.wait_for(sweep_until_dead(), 30)
    finally:
        stop_worker(worker)

    [letter] = dead
    assert (letter.consumer, letter.deliveries, letter.payload) == (consumer, 1, payload)
    assert letter.reason == "no result after 1 deliveries (the worker stopped or timed out)"
    assert (await js.stream_info(subjects.TASKS_STREAM)).state.messages == 0
    assert (await js.stream_info(subjects.DEAD_LETTER_STREAM)).state.messages == 1
