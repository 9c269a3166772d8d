"""W3C trace context in NATS headers: injected on publish, extracted on consume."""

from __future__ import annotations

from opentelemetry import propagate
from opentelemetry.context import Context


def inject(headers: dict[str, str] | None = None) -> dict[str, str]:
    """Return ``headers`` with the current span's ``traceparent`` (and baggage) added."""
    carrier = dict(headers or {})
    propagate.inject(carrier)
    return carrier


def extract(headers: dict[str, str] | None) -> Context:
    """The remote parent context carried by a message's headers (empty when none)."""
    return propagate.extract(headers or {})
