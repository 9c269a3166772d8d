"""What a Redis or NATS outage raises: the loops that outlive one catch these, log, and try again."""

from __future__ import annotations

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
