"""Errors of the bus package.

BusError
 ├── PublishFailed       JetStream did not acknowledge a publish (the message may not be stored)
 ├── RetryableError      a handler's failure that should be retried (nak with delay)
 └── A2ANatsError        an A2A call over NATS failed (no responder, timeout, error reply)
"""

from __future__ import annotations


class BusError(Exception):
    """Root of the bus package's errors."""


class PublishFailed(BusError):
    """JetStream did not acknowledge a publish."""


class RetryableError(BusError):
    """Raised by a handler when the message should be redelivered after ``retry_after`` seconds."""

    retryable = True

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class A2ANatsError(BusError):
    """An A2A request over NATS failed."""
