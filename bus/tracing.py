"""W3C trace context across hops: in NATS headers (injected on publish, extracted on consume), and
on every outgoing HTTP call made through ``traced_transport``.

The HTTP half is OpenTelemetry's own httpx instrumentation, applied per client
(never process-wide): the transport opens one ``CLIENT`` span per request
under the current span and puts its ``traceparent`` (and ``tracestate``) on the
request, so the server on the other side continues the caller's trace.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opentelemetry import propagate
from opentelemetry.context import Context

if TYPE_CHECKING:  # httpx and its instrumentation load on the first HTTP client (~190 ms, ~10 MB): every
    import httpx  # process imports this module for the NATS half, most never make an HTTP call


def inject(headers: dict[str, str] | None = None) -> dict[str, str]:
    """Return ``headers`` with the current span's ``traceparent`` (and baggage) added."""
    carrier = dict(headers or {})
    propagate.inject(carrier)
    return carrier


def extract(headers: dict[str, str] | None) -> Context:
    """The remote parent context carried by a message's headers (empty when none)."""
    return propagate.extract(headers or {})


def carried(headers: dict[str, str] | None) -> dict[str, str]:
    """Only the trace context fields of ``headers`` (``traceparent``, ``tracestate``, ``baggage``), to keep."""
    fields = propagate.get_global_textmap().fields
    return {key.lower(): value for key, value in (headers or {}).items() if key.lower() in fields}


def traced_transport(inner: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncBaseTransport:
    """``inner`` (default: httpx's own) with a client span and ``traceparent`` on every request it sends."""
    import httpx
    from opentelemetry.instrumentation.httpx import AsyncOpenTelemetryTransport

    return AsyncOpenTelemetryTransport(inner or httpx.AsyncHTTPTransport())
