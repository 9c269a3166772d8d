"""The ingest half of push notifications: every job event, in stream order, onto its webhooks' queues.

Each API process reads ``CREWS_EVENTS`` through its own ephemeral pull consumer (no acks,
removed by the server a minute after its process is gone) from the shared cursor
``crews:a2a:push:cursor``: the stream sequence up to which every event was taken, moved on
after each batch. An event of a job with webhooks becomes its task's update
(``crews.a2a.updates.task_update``), appended to each webhook's queue
(``crews:{job:<id>}:a2a:push:queue:<config>``) unless that webhook's last sequence taken
(in ``…:a2a:push:state``) is as far, and the queue is marked due in ``crews:a2a:push:due``.

Every process takes events in stream order, so "as far" means "taken before": a process killed
half way through a batch left the cursor behind it, the next one takes those events again as
no-ops and skips none; replicas taking the same events neither repeat nor reorder an update.
(A durable consumer shared by the processes handed a killed process's unacked events to the next
one only after the ack wait, behind newer events whose sequence then made them no-ops: lost.)
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from functools import partial

import nats.errors
import nats.js.errors
from a2a.types import StreamResponse
from google.protobuf.json_format import MessageToDict
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import BaseModel
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bus import subjects
from bus.contracts.codec import decode
from bus.contracts.events import wrap
from bus.jetstream.events import admissible
from bus.tracing import carried
from crews.a2a.push.configs import PushConfigs, PushTarget
from crews.a2a.tasks import A2ARecords
from crews.a2a.updates import task_update
from crews.jobs.store import RedisJobStore

logger = logging.getLogger(__name__)

CURSOR_KEY = "crews:a2a:push:cursor"
DUE_KEY = "crews:a2a:push:due"
BATCH = 64
RETRY_S = 1.0

# KEYS: queue, state; ARGV: seq field, seq, item, ttl. 1: appended, 0: this event was taken before.
_ENQUEUE = """
local last = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if tonumber(ARGV[2]) <= last then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('RPUSH', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 1
"""
# KEYS: cursor; ARGV: seq. The cursor only moves on (a replica behind the others leaves it).
_ADVANCE = """
if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
"""


class Queued(BaseModel):
    """One update waiting for one webhook."""

    seq: int
    body: str
    trace_context: dict[str, str] = {}
    """The trace context of the event (``traceparent``, …): the delivery continues the job's trace."""


def queue_key(job: str, config: str) -> str:
    return f"crews:{{job:{job}}}:a2a:push:queue:{config}"


def state_key(job: str) -> str:
    return f"crews:{{job:{job}}}:a2a:push:state"


class PushIngest:
    """Takes the job events onto the webhooks' queues; ``run`` until ``stopping`` is set."""

    def __init__(
        self,
        js: JetStreamContext,
        store: RedisJobStore,
        configs: PushConfigs,
        ttl_s: int,
        queued: Callable[[], None],
    ) -> None:
        self._js, self._store, self._configs, self._ttl_s, self._queued = js, store, configs, ttl_s, queued
        self._redis: Redis = store.redis
        self._enqueue = self._redis.register_script(_ENQUEUE)
        self._advance = self._redis.register_script(_ADVANCE)
        self._next = 0
        self._consumer = ""
        self._sub: JetStreamContext.PullSubscription | None = None

    async def start(self) -> None:
        """Subscribe from the shared cursor now if Redis and NATS answer, else once they do (in ``run``)."""
        try:
            await self._start()
        except (RedisError, nats.errors.Error, OSError) as exc:  # the API starts anyway (503s)
            logger.warning("push: not reading events yet (%r); trying again in %.0f s", exc, RETRY_S)

    async def _start(self) -> None:
        state = (await self._js.stream_info(subjects.EVENTS_STREAM)).state
        cursor = await self._redis.get(CURSOR_KEY)
        if cursor is None:  # the first run of all: from the stream's end
            await self._redis.set(CURSOR_KEY, state.last_seq, nx=True)
        elif int(cursor) > state.last_seq:  # the stream was made anew (NATS lost its data): all of it
            logger.warning("push: the cursor %s is past the events stream's end %d", cursor, state.last_seq)
            await self._redis.set(CURSOR_KEY, max(state.first_seq - 1, 0))
        self._next = int(await self._redis.get(CURSOR_KEY) or 0) + 1
        await self._subscribe()

    async def close(self) -> None:
        """Unsubscribe (else the connection's drain waits for it) and remove the consumer."""
        await self._unsubscribe()
        if self._consumer:
            with suppress(nats.errors.Error):
                await self._js.delete_consumer(subjects.EVENTS_STREAM, self._consumer)

    async def _unsubscribe(self) -> None:
        if self._sub is not None:
            with suppress(nats.errors.Error):
                await self._sub.unsubscribe()
            self._sub = None

    async def _subscribe(self) -> None:
        await self._unsubscribe()
        config = ConsumerConfig(
            ack_policy=AckPolicy.NONE,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=self._next,
            inactive_threshold=60.0,
        )
        self._sub = await self._js.pull_subscribe(
            subjects.EVENTS_ALL, stream=subjects.EVENTS_STREAM, config=config
        )
        self._consumer = config.name or ""

    async def run(self, stopping: asyncio.Event) -> None:
        if self._sub is None and not await self._retrying(self._start, "finding the cursor", stopping):
            return
        while not stopping.is_set():
            try:
                msgs = await self._fetch()
            except TimeoutError:  # nats' own, or asyncio's from a fetch with no heartbeat: nothing came
                continue
            except nats.errors.Error as exc:  # consumer gone, NATS or JetStream down or coming back
                if stopping.is_set():
                    return
                logger.warning("push consumer lost (%r): creating it again from sequence %d", exc, self._next)
                if not await pause(stopping):  # the streams may be coming back
                    await self._retrying(self._subscribe, "subscribing to the events", stopping)
                continue
            if not await self._take_batch(msgs, stopping):
                return

    async def _fetch(self) -> list[Msg]:
        if self._sub is None:  # subscribing again failed: the loop tries again
            raise nats.js.errors.NotFoundError
        return await self._sub.fetch(BATCH, timeout=1.0)

    async def _take_batch(self, msgs: list[Msg], stopping: asyncio.Event) -> bool:
        """Take ``msgs`` in order, then move the cursor past them; False if stopped before."""
        for msg in msgs:
            if not await self._retrying(partial(self._ingest, msg), msg.subject, stopping):
                return False
            self._next = msg.metadata.sequence.stream + 1
        if not msgs:
            return True
        advance = partial(self._advance, keys=[CURSOR_KEY], args=[self._next - 1])
        return await self._retrying(advance, "the cursor", stopping)

    async def _retrying(
        self, work: Callable[[], Awaitable[object]], what: str, stopping: asyncio.Event
    ) -> bool:
        """``await work()`` until it succeeds (True) or ``stopping`` is set (False): nothing is skipped."""
        while True:
            try:
                await work()
            except Exception:  # transport edge (Redis, NATS): log with context, try the same again
                logger.exception("push: %s not taken; trying it again in %.0f s", what, RETRY_S)
            else:
                return True
            if await pause(stopping):
                return False

    async def _ingest(self, msg: Msg) -> None:
        source = subjects.event_source(msg.subject)
        if source is None:
            return  # not a job's event subject: nothing to deliver
        configs = await self._configs.targets(source.job)
        if configs:
            await self._take(source.job, msg, configs)

    async def _take(self, job: str, msg: Msg, configs: list[PushTarget]) -> None:
        event = decode(msg.data, StreamResponse)
        if not admissible(msg.subject, job, event):
            return  # forged by a role, or published by mistake (logged)
        a2a = await A2ARecords(self._redis, self._ttl_s).get(job)
        update = await task_update(self._store, job, a2a.context_id if a2a else job, event)
        if update is None:
            return
        seq = int(msg.metadata.sequence.stream)
        body = MessageToDict(wrap(update))
        item = Queued(seq=seq, body=json.dumps(body), trace_context=carried(msg.headers)).model_dump_json()
        for config in configs:
            args = [f"{config.id}:seq", seq, item, self._ttl_s]
            await self._enqueue(keys=[queue_key(job, config.id), state_key(job)], args=args)
            await self._redis.zadd(DUE_KEY, {f"{job}/{config.id}": time.time()}, nx=True)
        self._queued()


async def pause(stopping: asyncio.Event) -> bool:
    """Wait ``RETRY_S`` or until stopping; True if stopping."""
    with suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), RETRY_S)
    return stopping.is_set()
