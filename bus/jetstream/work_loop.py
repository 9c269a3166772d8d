"""The consumer work loop: fetch, keep the message alive while handling, then ack, nak or dead-letter.

- While the handler runs, an in-progress ack goes out every ``ack_wait / 3``,
  so a long step is not redelivered.
- Success → ``ack`` *after* the handler returned, i.e. after it recorded its
  result. The ack is not confirmed (no ``ack_sync`` round trip): every
  handler is idempotent (a step's result is written once and replayed, the
  coordinator re-derives a job from its state), so an ack lost with a
  connection is a redelivery that changes nothing.
- ``RetryableError`` (or any unexpected error, logged) → ``nak`` with a delay,
  until the last allowed delivery, which is dead-lettered and terminated.
- ``stop()`` (wired to SIGTERM by the process) stops fetching, gives the
  handlers in hand ``grace_s`` to finish, then naks what is left.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from opentelemetry import trace

from bus.errors import RetryableError
from bus.jetstream.dead_letters import DeadHandler, DeadLetter, record_dead_letter
from bus.tracing import extract

log = logging.getLogger(__name__)
tracer = trace.get_tracer("crews.bus")
FETCH_MORE_S = 0.005  # after the first message: how long to wait for more already on their way


@dataclass(frozen=True)
class Delivery:
    """One delivery of a message to a handler."""

    subject: str
    data: bytes
    headers: dict[str, str]
    attempt: int
    max_deliver: int
    stream_seq: int

    @property
    def last_attempt(self) -> bool:
        return self.max_deliver > 0 and self.attempt >= self.max_deliver


Handler = Callable[[Delivery], Awaitable[None]]


def dead_letter_of(delivery: Delivery, stream: str, consumer: str, reason: str) -> DeadLetter:
    """What is kept of ``delivery`` when it cannot be handled."""
    return DeadLetter(
        stream=stream,
        consumer=consumer,
        subject=delivery.subject,
        stream_seq=delivery.stream_seq,
        deliveries=delivery.attempt,
        reason=reason,
        payload_b64=base64.b64encode(delivery.data).decode(),
        headers=delivery.headers,
    )


class WorkLoop:
    """Pull from one durable consumer and run ``handler`` on up to ``concurrency`` messages at once."""

    def __init__(
        self,
        js: JetStreamContext,
        stream: str,
        consumer: str,
        handler: Handler,
        *,
        on_dead: DeadHandler | None = None,
        concurrency: int = 1,
        grace_s: float = 30.0,
        retry_delay_s: float = 1.0,
    ) -> None:
        self._js, self._stream, self._consumer = js, stream, consumer
        self._handler, self._on_dead = handler, on_dead
        self._slots = asyncio.Semaphore(concurrency)
        self._concurrency, self._grace_s, self._retry_delay_s = concurrency, grace_s, retry_delay_s
        self._stopping = asyncio.Event()
        self._ready = asyncio.Event()
        self._in_hand: set[asyncio.Task[None]] = set()
        self._ack_wait = 30.0
        self._max_deliver = -1

    def stop(self) -> None:
        """Stop fetching; ``run`` returns once the messages in hand are finished or given back."""
        self._stopping.set()

    async def wait_ready(self) -> None:
        """Wait until the loop is bound to its consumer and fetching."""
        await self._ready.wait()

    async def run(self) -> None:
        sub = await self._js.pull_subscribe_bind(consumer=self._consumer, stream=self._stream)
        info = await sub.consumer_info()
        self._ack_wait = float(info.config.ack_wait or 30.0)
        self._max_deliver = int(info.config.max_deliver or -1)
        self._ready.set()
        try:
            while not self._stopping.is_set():
                await self._fetch_into_slots(sub)
        finally:
            await self._drain()
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
                await (
                    self._js._nc.flush()
                )  # the last acks are the server's when run returns (no public accessor)

    async def _first_slot(self) -> bool:
        """Wait for a free slot; False when the loop is stopping instead."""
        acquire = asyncio.ensure_future(self._slots.acquire())
        stopping = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait({acquire, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not acquire.done():
            acquire.cancel()
            return False
        if self._stopping.is_set():
            self._slots.release()
            return False
        return True

    async def _fetch_into_slots(self, sub: JetStreamContext.PullSubscription) -> None:
        """Wait for one message and start it, then take what else is already there for the free slots.

        The wait is ``batch=1``, not ``batch=free``: nats-py's batch fetch,
        waiting on an idle consumer, can hold the first message that arrives
        until its request expires (up to the 1 s timeout, and the step with
        it: bench/FINDINGS.md, "A message held for up to a second"). More are
        asked for only when the first says some are pending: a batch fetch of
        an empty consumer is two pull requests and two status replies.
        """
        if not await self._first_slot():
            return
        free = 1
        while free < self._concurrency and not self._slots.locked():
            await self._slots.acquire()
            free += 1
        taken = await self._fetch(sub, 1, 1.0)
        self._start(taken)
        pending = taken[0].metadata.num_pending if taken else 0
        if pending and free > 1:
            taken += await self._fetch(sub, min(free - 1, pending), FETCH_MORE_S, start=True)
        for _ in range(free - len(taken)):
            self._slots.release()

    async def _fetch(
        self, sub: JetStreamContext.PullSubscription, batch: int, wait_s: float, *, start: bool = False
    ) -> list[Msg]:
        """Up to ``batch`` messages within ``wait_s`` (none when nothing came); started if ``start``."""
        try:
            msgs = await sub.fetch(batch, timeout=wait_s)
        except (NatsTimeout, TimeoutError):  # nats-py raises either when nothing came
            return []
        except NatsError as exc:  # disconnected: the client reconnects, we fetch again
            log.warning("fetch from %s/%s failed, retrying: %s", self._stream, self._consumer, exc)
            await asyncio.sleep(self._retry_delay_s)
            return []
        if start:
            self._start(msgs)
        return msgs

    def _start(self, msgs: list[Msg]) -> None:
        for msg in msgs:
            task = asyncio.create_task(self._handle(msg))
            self._in_hand.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_hand.discard(task)
        self._slots.release()

    async def _drain(self) -> None:
        if not self._in_hand:
            return
        _, late = await asyncio.wait(set(self._in_hand), timeout=self._grace_s)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)

    async def _handle(self, msg: Msg) -> None:
        meta = msg.metadata
        delivery = Delivery(
            subject=msg.subject,
            data=msg.data,
            headers=dict(msg.headers or {}),
            attempt=meta.num_delivered,
            max_deliver=self._max_deliver,
            stream_seq=meta.sequence.stream,
        )
        keep_alive = _KeepAlive(msg, self._ack_wait / 3)
        try:
            with tracer.start_as_current_span(
                f"process {msg.subject}", context=extract(delivery.headers), kind=trace.SpanKind.CONSUMER
            ) as span:
                span.set_attribute("messaging.system", "nats")
                span.set_attribute("messaging.destination.name", msg.subject)
                span.set_attribute("messaging.message.delivery_count", delivery.attempt)
                await self._run_handler(msg, delivery)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await msg.nak()
            raise
        finally:
            keep_alive.cancel()

    async def _run_handler(self, msg: Msg, delivery: Delivery) -> None:
        try:
            await self._handler(delivery)
        except RetryableError as exc:
            await self._retry_or_dead(msg, delivery, str(exc), exc.retry_after)
        except Exception as exc:  # transport edge: a failing handler must not stop the loop
            log.exception("handler failed on %s (delivery %d)", delivery.subject, delivery.attempt)
            await self._retry_or_dead(msg, delivery, f"{type(exc).__name__}: {exc}", self._retry_delay_s)
        else:
            await msg.ack()

    async def _retry_or_dead(self, msg: Msg, delivery: Delivery, reason: str, delay: float) -> None:
        if not delivery.last_attempt:
            await msg.nak(delay=delay)
            return
        dead = dead_letter_of(delivery, self._stream, self._consumer, reason)
        await record_dead_letter(self._js, dead)
        if self._on_dead is not None:
            await self._on_dead(dead)
        await msg.term()
        log.warning("dead-lettered %s after %d deliveries: %s", delivery.subject, delivery.attempt, reason)


class _KeepAlive:
    """An in-progress ack for ``msg`` every ``every_s`` until cancelled: a timer, no task until it fires."""

    def __init__(self, msg: Msg, every_s: float) -> None:
        self._msg, self._every_s = msg, every_s
        self._loop = asyncio.get_running_loop()
        self._timer = self._loop.call_later(every_s, self._fire)
        self._task: asyncio.Task[None] | None = None

    def _fire(self) -> None:
        self._task = self._loop.create_task(self._touch())

    async def _touch(self) -> None:
        with contextlib.suppress(NatsError):  # disconnected: the next tick tries again
            await self._msg.in_progress()
        self._timer = self._loop.call_later(self._every_s, self._fire)

    def cancel(self) -> None:
        self._timer.cancel()
        if self._task is not None:
            self._task.cancel()
