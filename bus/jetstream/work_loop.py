"""The consumer work loop: pull, keep the message alive while handling, then ack, nak or dead-letter.

- Messages come from pull requests that stay open for the free slots
  (``bus.jetstream.pulls``): one request covers several steps, asked again
  once half the slots are free.
- While the handler runs, an in-progress ack goes out every ``ack_wait / 3``,
  so a long step is not redelivered.
- Success → ``ack`` *after* the handler returned, i.e. after it recorded its
  result. The ack is not confirmed (no ``ack_sync`` round trip): every
  handler is idempotent (a step's result is written once and replayed, the
  coordinator re-derives a job from its state), so an ack lost with a
  connection is a redelivery that changes nothing.
- ``RetryableError`` (or any unexpected error, logged) → ``nak`` with a delay,
  until the last allowed delivery, which is dead-lettered and terminated.
- ``stop()`` (wired to SIGTERM by the process) stops asking, gives back what
  the open requests still bring, gives the handlers in hand ``grace_s`` to
  finish, then naks what is left.
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
from nats.js import JetStreamContext
from opentelemetry import trace

from bus.errors import RetryableError
from bus.jetstream.dead_letters import DeadHandler, DeadLetter, record_dead_letter
from bus.jetstream.pulls import Pulls
from bus.tracing import extract

log = logging.getLogger(__name__)
tracer = trace.get_tracer("crews.bus")


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
        self._concurrency, self._grace_s, self._retry_delay_s = concurrency, grace_s, retry_delay_s
        self._stopping = asyncio.Event()
        self._ready = asyncio.Event()
        self._changed = asyncio.Event()  # a slot freed, a request ended, or stop: the loop looks again
        self._in_hand: set[asyncio.Task[None]] = set()
        self._pulls = Pulls(js, stream, consumer, self._arrived, self._changed.set)
        self._ack_wait = 30.0
        self._max_deliver = -1

    def stop(self) -> None:
        """Stop asking for messages; ``run`` returns once the messages in hand are finished or given back."""
        self._stopping.set()
        self._changed.set()

    async def wait_ready(self) -> None:
        """Wait until the loop is bound to its consumer and has asked for messages."""
        await self._ready.wait()

    async def run(self) -> None:
        info = await self._js.consumer_info(self._stream, self._consumer)
        self._ack_wait = float(info.config.ack_wait or 30.0)
        self._max_deliver = int(info.config.max_deliver or -1)
        await self._pulls.open()
        try:
            while not self._stopping.is_set():
                await self._ask_for_room()
        finally:
            await self._wait_for_requests()
            await self._drain()
            with contextlib.suppress(Exception):
                await self._pulls.close()
                await self._js._nc.flush()  # the last acks reach the server before run returns

    async def _ask_for_room(self) -> None:
        """Ask for the slots no request covers yet, then wait for a change (or a request's expiry)."""
        self._changed.clear()
        if self._pulls.failed:  # an error status: not at once again
            await asyncio.sleep(self._retry_delay_s)
        room = self._pulls.room(self._concurrency - len(self._in_hand), self._concurrency)
        if room:
            try:
                await self._pulls.ask(room)
            except NatsError as exc:  # disconnected: the client reconnects, we ask again
                log.warning("pull request on %s/%s failed, retrying: %s", self._stream, self._consumer, exc)
                await asyncio.sleep(self._retry_delay_s)
                return
        self._ready.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._pulls.due_in()):
                await self._changed.wait()
        self._pulls.expire()

    async def _wait_for_requests(self) -> None:
        """Stopping: what the open requests still bring is given back (``_arrived``) until they expire."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._pulls.due_in()):
                while self._pulls.asked:
                    self._changed.clear()
                    await self._changed.wait()

    def _arrived(self, msg: Msg) -> None:
        # asked for before the stop: to another worker at once (``_done`` wakes the stopping wait)
        if self._stopping.is_set():
            task = asyncio.create_task(msg.nak())
        else:
            task = asyncio.create_task(self._handle(msg))
        self._in_hand.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_hand.discard(task)
        self._changed.set()

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
