"""Pull requests that stay open: a consumer's messages pushed to one inbox as they come, for free slots.

A ``fetch(1)`` per message (nats-py's pull API) costs a pull request, a reply
future and a wait per message, and a new request for each one. Here a work loop
asks once for as many messages as it has room for (``ask``); each request stays
open on the server until its messages came or it expired (``expires_s``), and
the server delivers every message to the one inbox as soon as it is there. The
loop asks again when half its slots are free (``Pulls.room``), as nats.go's
``Consume`` does. What the requests still may bring (``asked``) is counted
down by each message and by the server's ``408``/``409`` replies, whose
``Nats-Pending-Messages`` header says how many a request leaves undelivered.

A server that restarted forgot the requests (and sends no ``408``): once every
request the loop sent has passed its expiry, nothing more can come of them, so
what is still counted is dropped (``expire``) and the loop asks again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext

log = logging.getLogger(__name__)

PENDING_HEADER = "Nats-Pending-Messages"
EXPIRES_S = 1.0  # an idle loop's request lives this long (a 408 each time): what a restarted server costs
EXPIRY_MARGIN_S = 0.5  # after its expiry, how long a request's 408 may take to come


class Pulls:
    """Open pull requests on one durable consumer; ``on_message`` gets each message, ``on_end`` each
    request's end (its expiry, or an error status, then logged)."""

    def __init__(
        self,
        js: JetStreamContext,
        stream: str,
        consumer: str,
        on_message: Callable[[Msg], None],
        on_end: Callable[[], None],
        *,
        expires_s: float = EXPIRES_S,
    ) -> None:
        self._nc: NATS = js._nc  # no public accessor
        prefix = js._prefix  # the JetStream API's (a domain changes it): no public accessor
        self._next = f"{prefix}.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._on_message, self._on_end = on_message, on_end
        self._expires_s = expires_s
        self._inbox = self._nc.new_inbox()
        self._sub: Subscription | None = None
        self.asked = 0  # messages the open requests may still bring
        self._last_ask = 0.0
        self.failed = False  # the last request ended on an error (not its expiry): back off before asking

    async def open(self) -> None:
        self._sub = await self._nc.subscribe(self._inbox, cb=self._reply)

    async def close(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            await sub.unsubscribe()

    def room(self, free: int, concurrency: int) -> int:
        """How many to ask for now with ``free`` slots not yet asked for: all of them when nothing is open,
        else only once half the slots are (fewer, fuller requests)."""
        room = free - self.asked
        if room <= 0 or (self.asked and room < max(1, concurrency // 2)):
            return 0
        return room

    async def ask(self, batch: int) -> None:
        request = {"batch": batch, "expires": int(self._expires_s * 1e9)}
        self.asked += batch  # before the publish: a reply may come before it returns
        self._last_ask = time.monotonic()
        self.failed = False
        try:
            await self._nc.publish(self._next, json.dumps(request).encode(), reply=self._inbox)
        except BaseException:
            self.asked = max(0, self.asked - batch)  # never sent: nothing will come of it
            raise

    def expire(self) -> bool:
        """Drop what requests past their expiry still count (a restarted server forgot them); True if any."""
        if self.asked and time.monotonic() > self._deadline:
            log.info("pull requests on %s expired unanswered (server restarted?): asking again", self._next)
            self.asked = 0
            return True
        return False

    def due_in(self) -> float | None:
        """Seconds until ``expire`` could drop something (None: nothing open)."""
        if not self.asked:
            return None
        return max(0.0, self._deadline - time.monotonic())

    @property
    def _deadline(self) -> float:
        """When the last request sent has expired and its ``408`` had time to come."""
        return self._last_ask + self._expires_s + EXPIRY_MARGIN_S

    async def _reply(self, msg: Msg) -> None:
        status = JetStreamContext.is_status_msg(msg)
        if status is None:
            self.asked = max(0, self.asked - 1)
            self._on_message(msg)
            return
        if status == "100":  # a heartbeat: not asked for, nothing ends
            return
        headers = msg.headers or {}
        left = headers.get(PENDING_HEADER)
        self.asked = max(0, self.asked - int(left)) if left is not None else 0
        if status != "408":  # 409: the consumer was deleted, a limit exceeded, a leader changed, ...
            self.failed = True
            log.warning("pull request on %s ended: %s %s", self._next, status, headers.get("Description", ""))
        self._on_end()
