"""The consumer work loop against a real nats-server (and Redis for results)."""

from __future__ import annotations

import asyncio
import json
import subprocess

import nats
import pytest
import redis.asyncio as aioredis
from a2a.types import Message, Part, Role, SendMessageRequest
from nats.aio.client import Client as NATS

from bus import subjects
from bus.contracts.codec import decode, encode
from bus.errors import RetryableError
from bus.jetstream.dead_letters import DeadLetter
from bus.jetstream.dispatch import dispatch_step, publish_durable
from bus.jetstream.streams import ensure_role_consumer, ensure_streams
from bus.jetstream.work_loop import Delivery, WorkLoop
from bus.settings import BusSettings
from tests.bus.helpers import next_message, start_worker, stop_worker
from tests.servers import ManagedServer
from tests.waits import eventually

CREW, ROLE = "demo", "writer"


def step_request(text: str) -> SendMessageRequest:
    message = Message(message_id=f"m-{text}", context_id="job1", task_id=f"t-{text}", role=Role.ROLE_USER)
    message.parts.append(Part(text=text))
    return SendMessageRequest(message=message)


async def setup_role(nc: NATS, **overrides: float) -> str:
    settings = BusSettings(**overrides)  # type: ignore[arg-type]
    js = nc.jetstream()
    await ensure_streams(js, settings)
    return await ensure_role_consumer(js, CREW, ROLE, settings)


async def test_same_message_id_twice_is_stored_once(nc: NATS) -> None:
    await setup_role(nc)
    js = nc.jetstream()
    first = await dispatch_step(js, CREW, ROLE, encode(step_request("a")), "job1:a:1")
    second = await dispatch_step(js, CREW, ROLE, encode(step_request("a")), "job1:a:1")
    assert second.duplicate and not first.duplicate
    info = await js.stream_info(subjects.TASKS_STREAM)
    assert info.state.messages == 1


async def test_step_request_round_trips_as_a2a_json(nc: NATS) -> None:
    consumer = await setup_role(nc)
    js = nc.jetstream()
    await dispatch_step(js, CREW, ROLE, encode(step_request("hello")), "job1:hello:1")
    sub = await js.pull_subscribe_bind(consumer=consumer, stream=subjects.TASKS_STREAM)
    [msg] = await sub.fetch(1, timeout=5)
    request = decode(msg.data, SendMessageRequest)
    assert request.message.parts[0].text == "hello"
    assert json.loads(msg.data)["message"]["role"] == "ROLE_USER"
    await msg.ack()


async def test_killed_worker_step_is_redelivered_to_another_and_recorded_once(
    nc: NATS, nats_server: ManagedServer, redis_server: ManagedServer, redis_client: aioredis.Redis
) -> None:
    consumer = await setup_role(nc, ack_wait_s=1.0)
    first = start_worker(nats_server.url, redis_server.url, subjects.TASKS_STREAM, consumer, "A")
    second: subprocess.Popen[str] | None = None
    try:
        started = asyncio.ensure_future(next_message(nc, "test.started.s1"))
        done = asyncio.ensure_future(next_message(nc, "test.done.s1"))
        await nc.flush()
        payload = json.dumps({"id": "s1", "mode": "block_first"}).encode()
        await publish_durable(
            nc.jetstream(), subjects.task_subject(CREW, ROLE), payload, "s1", subjects.TASKS_STREAM
        )
        assert (await started).data == b"A"
        stop_worker(first)  # SIGKILL mid-handler
        second = start_worker(nats_server.url, redis_server.url, subjects.TASKS_STREAM, consumer, "B")
        assert (await done).data == b"B"
        assert await redis_client.lrange("handled:s1", 0, -1) == ["A:1", "B:2"]
        assert await redis_client.hget("results", "s1") == "B"
        assert await redis_client.get("writes:s1") == "1"
    finally:
        stop_worker(first)
        if second is not None:
            stop_worker(second)


async def test_in_progress_acks_prevent_redelivery_of_a_long_step(nc: NATS) -> None:
    consumer = await setup_role(nc, ack_wait_s=0.5)
    js = nc.jetstream()
    attempts: list[int] = []
    redelivered = asyncio.Event()
    release = asyncio.Event()

    async def handle(delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        if delivery.attempt > 1:
            redelivered.set()
        await release.wait()

    loop = WorkLoop(js, subjects.TASKS_STREAM, consumer, handle, concurrency=2)
    runner = asyncio.create_task(loop.run())
    await publish_durable(js, subjects.task_subject(CREW, ROLE), b"{}", "long", subjects.TASKS_STREAM)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(redelivered.wait(), timeout=4 * 0.5)  # 4 x ack_wait without a redelivery
    release.set()
    loop.stop()
    await runner
    assert attempts == [1]
    assert (await js.stream_info(subjects.TASKS_STREAM)).state.messages == 0


async def test_always_failing_handler_is_dead_lettered_after_max_deliver(nc: NATS) -> None:
    consumer = await setup_role(nc, max_deliver=3)
    js = nc.jetstream()
    attempts: list[int] = []
    dead_seen: asyncio.Future[DeadLetter] = asyncio.get_running_loop().create_future()

    async def handle(delivery: Delivery) -> None:
        attempts.append(delivery.attempt)
        raise RetryableError("the LLM is down", retry_after=0.05)

    async def on_dead(dead: DeadLetter) -> None:
        dead_seen.set_result(dead)

    record = asyncio.ensure_future(
        next_message(nc, subjects.dead_letter_subject(subjects.TASKS_STREAM, consumer))
    )
    await nc.flush()
    loop = WorkLoop(js, subjects.TASKS_STREAM, consumer, handle, on_dead=on_dead)
    runner = asyncio.create_task(loop.run())
    await publish_durable(js, subjects.task_subject(CREW, ROLE), b"payload", "fails", subjects.TASKS_STREAM)
    dead = await asyncio.wait_for(dead_seen, 20)
    stored = DeadLetter.model_validate_json((await record).data)
    loop.stop()
    await runner
    assert attempts == [1, 2, 3]
    assert stored == dead
    assert (stored.deliveries, stored.reason, stored.payload) == (3, "the LLM is down", b"payload")

    async def terminated() -> bool:  # the TERM is not confirmed: the stream drops the step just after
        return (await js.stream_info(subjects.TASKS_STREAM)).state.messages == 0

    await eventually(terminated, what="the dead-lettered step to leave the work queue")
    assert (await js.stream_info(subjects.DEAD_LETTER_STREAM)).state.messages == 1


async def test_nats_restart_loses_nothing_and_workers_keep_fetching(own_nats_server: ManagedServer) -> None:
    reconnected = asyncio.Event()

    async def on_reconnect() -> None:
        reconnected.set()

    nc = await nats.connect(
        own_nats_server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.1, reconnected_cb=on_reconnect
    )
    consumer = await setup_role(nc)
    js = nc.jetstream()
    seen: list[bytes] = []
    all_seen = asyncio.Event()

    async def handle(delivery: Delivery) -> None:
        seen.append(delivery.data)
        if len(set(seen)) == 6:
            all_seen.set()

    subject = subjects.task_subject(CREW, ROLE)
    for i in range(3):
        await publish_durable(js, subject, f"before-{i}".encode(), f"b{i}", subjects.TASKS_STREAM)
    own_nats_server.kill()
    own_nats_server.restart()
    await asyncio.wait_for(reconnected.wait(), 20)
    loop = WorkLoop(js, subjects.TASKS_STREAM, consumer, handle)
    runner = asyncio.create_task(loop.run())
    for i in range(3):
        await publish_durable(js, subject, f"after-{i}".encode(), f"a{i}", subjects.TASKS_STREAM)
    await asyncio.wait_for(all_seen.wait(), 30)
    loop.stop()
    await runner
    assert sorted(set(seen)) == sorted([f"{w}-{i}".encode() for w in ("before", "after") for i in range(3)])
    await nc.close()


async def test_stop_naks_what_is_in_hand_after_the_grace_period(nc: NATS) -> None:
    consumer = await setup_role(nc)
    js = nc.jetstream()
    started = asyncio.Event()

    async def handle(delivery: Delivery) -> None:
        started.set()
        await asyncio.Event().wait()

    loop = WorkLoop(js, subjects.TASKS_STREAM, consumer, handle, grace_s=0.2)
    runner = asyncio.create_task(loop.run())
    await publish_durable(js, subjects.task_subject(CREW, ROLE), b"x", "x", subjects.TASKS_STREAM)
    await asyncio.wait_for(started.wait(), 10)
    loop.stop()
    await runner
    sub = await js.pull_subscribe_bind(consumer=consumer, stream=subjects.TASKS_STREAM)
    [msg] = await sub.fetch(1, timeout=5)  # given back, so it comes again at once
    assert msg.data == b"x" and msg.metadata.num_delivered == 2
    await msg.ack()


async def test_a_step_reaching_an_idle_loop_starts_at_once(nc: NATS) -> None:
    """An idle consumer (its fetches expiring) hands each new step over at once, at any concurrency."""
    consumer = await setup_role(nc)
    js = nc.jetstream()
    started: asyncio.Queue[float] = asyncio.Queue()

    async def handler(_: Delivery) -> None:
        started.put_nowait(asyncio.get_running_loop().time())

    loop = WorkLoop(js, subjects.TASKS_STREAM, consumer, handler, concurrency=4)
    runner = asyncio.create_task(loop.run())
    await loop.wait_ready()
    waits = []
    for i, idle_s in enumerate(0.2 + 0.37 * (n % 6) for n in range(12)):
        await asyncio.sleep(idle_s)  # the loop idles in between: that is what is tested, not a wait for it
        sent = asyncio.get_running_loop().time()
        await dispatch_step(js, CREW, ROLE, encode(step_request(f"s{i}")), f"job1:s{i}:1")
        waits.append(await asyncio.wait_for(started.get(), 5) - sent)
    loop.stop()
    await runner
    assert max(waits) < 0.2, [round(w, 3) for w in waits]  # was up to 0.75 s with batch fetches


async def test_one_pull_request_covers_the_free_slots_not_one_per_step(nc: NATS) -> None:
    """A backlog is asked for in one request for every free slot; steps coming one at a time need fewer
    requests than steps (requests stay open), and never more than ``concurrency`` are in hand."""
    consumer = await setup_role(nc)
    js = nc.jetstream()
    pulls: asyncio.Queue[int] = asyncio.Queue()

    async def saw_pull(msg: nats.aio.msg.Msg) -> None:
        pulls.put_nowait(int(json.loads(msg.data or b"{}").get("batch", 1)))

    await nc.subscribe(f"$JS.API.CONSUMER.MSG.NEXT.{subjects.TASKS_STREAM}.{consumer}", cb=saw_pull)
    for i in range(6):  # a backlog before the loop starts: more than its slots
        await dispatch_step(js, CREW, ROLE, encode(step_request(f"b{i}")), f"job1:b{i}:1")
    handled: asyncio.Queue[str] = asyncio.Queue()
    release = asyncio.Event()
    in_hand = most = 0

    async def handler(delivery: Delivery) -> None:
        nonlocal in_hand, most
        in_hand += 1
        most = max(most, in_hand)
        handled.put_nowait(delivery.subject)
        if not release.is_set():
            await release.wait()  # the backlog's first four are in hand together
        in_hand -= 1

    loop = WorkLoop(js, subjects.TASKS_STREAM, consumer, handler, concurrency=4)
    runner = asyncio.create_task(loop.run())
    for _ in range(4):
        await asyncio.wait_for(handled.get(), 5)
    await nc.flush()
    assert pulls.get_nowait() == 4 and pulls.empty()  # one request, for the four free slots
    release.set()
    for _ in range(2):  # the rest of the backlog
        await asyncio.wait_for(handled.get(), 5)
    await nc.flush()
    while not pulls.empty():
        pulls.get_nowait()
    steps = 20
    for i in range(steps):  # one step at a time, each handled before the next is sent
        await dispatch_step(js, CREW, ROLE, encode(step_request(f"q{i}")), f"job1:q{i}:1")
        await asyncio.wait_for(handled.get(), 5)
    await nc.flush()
    requests = pulls.qsize()
    loop.stop()
    await runner
    assert most <= 4
    assert requests < steps, requests  # the fetch(1) loop sent one request per step
