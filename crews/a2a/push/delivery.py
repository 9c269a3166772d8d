"""Push notifications: job events in, one POST per update and webhook out, in order.

Two halves, both in every API process (any number of replicas):

- **Ingest** (``crews.a2a.push.ingest``): every job event, in stream order, onto the queue of
  each of its job's webhooks, and the queue marked due.
- **Deliver**: a due queue is claimed (its score moves past a lease, so one
  replica posts it), its head is POSTed (the A2A ``StreamResponse`` JSON, the
  headers of ``crews.a2a.push.configs``); a 2xx takes it off the queue, anything
  else retries it after ``CREWS_A2A_PUSH_BACKOFF_S`` doubling up to
  ``…_BACKOFF_MAX_S``, and after ``…_MAX_ATTEMPTS`` the update is dropped (logged)
  and the next one goes. A queue's updates leave in the order of the events.

Each queued update keeps the trace context of the event it reports (the
event's ``traceparent`` header, so the job's trace); its delivery is a span
of that trace, and the POST carries it on (``traceparent``,
``bus.tracing.traced_transport``): the webhook's side joins the job's trace.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from contextlib import suppress

import httpx
from nats.js import JetStreamContext
from opentelemetry import trace

from bus.outages import OutageRetry
from bus.tracing import extract, traced_transport
from crews.a2a.push.configs import SIGNED, PushConfigs, PushTarget
from crews.a2a.push.guard import WebhookRefused, check_webhook
from crews.a2a.push.ingest import DUE_KEY, RETRY_S, PushIngest, Queued, queue_key, state_key
from crews.a2a.settings import A2ASettings
from crews.jobs.store import RedisJobStore

logger = logging.getLogger(__name__)
tracer = trace.get_tracer("crews")

SIGNATURE_HEADER = "X-Crews-Signature"
DELIVERY_HEADER = "X-Crews-Delivery"
TOKEN_HEADER = "X-A2A-Notification-Token"

# KEYS: due; ARGV: member, now, lease until. 1: claimed.
_CLAIM = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
"""


def signature(secret: str, body: bytes) -> str:
    """``sha256=<hex>``: the HMAC-SHA256 of the body under the config's secret (``X-Crews-Signature``)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class PushDelivery:
    """Ingests job events and delivers the updates to the webhooks; ``run`` until ``stop``."""

    def __init__(
        self,
        js: JetStreamContext,
        store: RedisJobStore,
        settings: A2ASettings,
        ttl_s: int,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._js, self._store, self._settings, self._ttl_s = js, store, settings, ttl_s
        self._redis = store.redis
        self._configs = PushConfigs(store.redis, settings, ttl_s)
        self._http = http or httpx.AsyncClient(
            timeout=settings.push_timeout_s, follow_redirects=False, transport=traced_transport()
        )
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._ingest = PushIngest(js, store, self._configs, ttl_s, queued=self._wake.set)
        self._claim = self._redis.register_script(_CLAIM)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self, ready: asyncio.Event | None = None) -> None:
        await self._ingest.start()
        if ready is not None:
            ready.set()
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._ingest.run(self._stopping))
                group.create_task(self._deliver_loop())
        finally:
            await self._http.aclose()
            await self._ingest.close()

    # --- deliver ---------------------------------------------------------------------------

    async def _deliver_loop(self) -> None:
        """Deliver what is due until stopped; a Redis outage pauses it (a claim not finished is
        claimed again when its lease ends), it does not end it."""
        retry = OutageRetry(logger, "push: delivery round", RETRY_S)
        while not self._stopping.is_set():
            with retry.round():
                await self._deliver_due()
            if retry.failing:
                await retry.pause(self._stopping)

    async def _deliver_due(self) -> None:
        """Deliver the heads that are due, or wait until one may be."""
        now = time.time()
        due: list[str] = await self._redis.zrangebyscore(DUE_KEY, "-inf", now, start=0, num=32)
        lease = now + self._settings.push_timeout_s + 5.0
        claimed = [m for m in due if await self._claim(keys=[DUE_KEY], args=[m, now, lease]) == 1]
        if claimed:
            await asyncio.gather(*(self._deliver_head(member) for member in claimed))
            return
        self._wake.clear()
        with suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), await self._idle_s(now))

    async def _idle_s(self, now: float) -> float:
        first: list[tuple[str, float]] = await self._redis.zrange(DUE_KEY, 0, 0, withscores=True)
        return max(0.01, min(1.0, first[0][1] - now)) if first else 1.0

    async def _deliver_head(self, member: str) -> None:
        job, _, config_id = member.partition("/")
        queue = queue_key(job, config_id)
        raw: str | None = await self._redis.lindex(queue, 0)
        configs = {c.id: c for c in await self._configs.targets(job)}
        if raw is None or config_id not in configs:  # nothing left, or the config was deleted
            if config_id not in configs:
                await self._redis.delete(queue)
            await self._reschedule(member, queue)
            return
        item = Queued.model_validate_json(raw)
        if await self._traced_post(configs[config_id], member, item):
            await self._done(member, queue, config_id, job)
            return
        attempts = int(await self._redis.hincrby(state_key(job), f"{config_id}:attempts", 1))
        if attempts >= self._settings.push_max_attempts:
            logger.warning("push: update %s/%s dropped after %d attempts", member, item.seq, attempts)
            await self._done(member, queue, config_id, job)
            return
        wait = min(self._settings.push_backoff_s * 2 ** (attempts - 1), self._settings.push_backoff_max_s)
        await self._redis.zadd(DUE_KEY, {member: time.time() + wait})

    async def _done(self, member: str, queue: str, config_id: str, job: str) -> None:
        await self._redis.lpop(queue)
        await self._redis.hdel(state_key(job), f"{config_id}:attempts")
        await self._reschedule(member, queue)

    async def _reschedule(self, member: str, queue: str) -> None:
        """Due now while the queue has updates; else off the due set (checked again, for a racing ingest)."""
        if await self._redis.llen(queue):
            await self._redis.zadd(DUE_KEY, {member: time.time()})
            return
        await self._redis.zrem(DUE_KEY, member)
        if await self._redis.llen(queue):
            await self._redis.zadd(DUE_KEY, {member: time.time()}, nx=True)

    async def _traced_post(self, config: PushTarget, member: str, item: Queued) -> bool:
        """``_post`` in a span of the trace of the event the update reports."""
        job, _, config_id = member.partition("/")
        attributes: dict[str, str | int] = {
            "crews.job": job,
            "crews.a2a.push_config": config_id,
            "crews.a2a.push_seq": item.seq,
        }
        with tracer.start_as_current_span(
            "deliver push notification", context=extract(item.trace_context), attributes=attributes
        ) as span:
            delivered = await self._post(config, member, item)
            span.set_attribute("crews.a2a.push_delivered", delivered)
            return delivered

    async def _post(self, config: PushTarget, member: str, item: Queued) -> bool:
        body = item.body.encode()
        headers = {"Content-Type": "application/json", DELIVERY_HEADER: f"{member}/{item.seq}"}
        if config.token:
            headers[TOKEN_HEADER] = config.token
        if config.scheme == SIGNED:
            headers[SIGNATURE_HEADER] = signature(config.credentials, body)
        elif config.scheme and config.credentials:
            headers["Authorization"] = f"{config.scheme} {config.credentials}"
        try:
            await check_webhook(config.url, allow_private=self._settings.push_allow_private)
            response = await self._http.post(config.url, content=body, headers=headers)
        except (httpx.HTTPError, WebhookRefused) as exc:
            logger.info("push: delivery %s/%s to %s failed: %s", member, item.seq, config.url, exc)
            return False
        if not response.is_success:
            logger.info(
                "push: delivery %s/%s to %s answered %d", member, item.seq, config.url, response.status_code
            )
        return response.is_success
