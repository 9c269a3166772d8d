"""What a Redis or NATS outage raises: the loops that outlive one catch these, log, and try again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import redis.exceptions
from nats.errors import Error as NatsError

from bus.errors import PublishFailed

OUTAGES: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,  # also BusyLoadingError: a restarted server reading its AOF
    redis.exceptions.TimeoutError,
    NatsError,  # nats.js errors too: no JetStream responders, timeouts
    PublishFailed,
    OSError,
    TimeoutError,
)


class OutageRetry:
    """How a loop that must outlive an outage goes on after a round that met one.

    ``with retry.round():`` around one round: an outage (``OUTAGES``) is logged, with what failed and
    when it is tried again, instead of raised; the first round that works after it says so.
    ``await retry.pause(stop)`` waits ``every_s``, doubled after each failed round up to ``max_s``
    (default ``every_s``: no backoff), or until ``stop``; True when stopped.
    """

    def __init__(
        self, log: logging.Logger, what: str, every_s: float, *, max_s: float | None = None, back: str = ""
    ) -> None:
        self._log, self.what, self.every_s = log, what, every_s
        self.max_s = max(every_s, max_s if max_s is not None else every_s)
        self._back = back  # said with "works again"
        self.pause_s = every_s
        self.failing = False

    @contextmanager
    def round(self) -> Iterator[None]:
        try:
            yield
        except OUTAGES as exc:
            self.pause_s = min(self.pause_s * 2, self.max_s)
            self.failing = True
            self._log.warning(
                "%s failed (%s: %s): trying again in %.1f s", self.what, type(exc).__name__, exc, self.pause_s
            )
            return
        if self.failing:
            self._log.info("%s works again%s", self.what, f": {self._back}" if self._back else "")
        self.failing, self.pause_s = False, self.every_s

    async def pause(self, stop: asyncio.Event) -> bool:
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), self.pause_s)
        return stop.is_set()
