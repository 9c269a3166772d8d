"""OpenTelemetry setup for every crews process: the SDK and an OTLP exporter when spans are exported.

Configure with the standard variables: ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) turns the OTLP/HTTP exporter on;
``OTEL_SERVICE_NAME`` overrides the service name; ``OTEL_SDK_DISABLED=true``
turns it off. A process that exports nothing installs no SDK: the API's no-op
tracer records no span, yet passes on the trace context it received (its
"span" is the parent's context), so the processes that export still join one
trace across one that does not. Recording spans that nothing reads cost ~0.1 ms
of CPU a step (three spans and four context injections in the worker, ~75 µs;
bench/FINDINGS.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from opentelemetry import trace

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def exports_spans() -> bool:
    """Whether this process's environment asks for its spans to be exported."""
    disabled = os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
    return not disabled and any(os.environ.get(name) for name in ENDPOINT_VARIABLES)


def setup_tracing(service: str) -> Callable[[], None]:
    """Install the SDK's tracer provider if this process exports spans; returns what flushes them on exit."""
    if not exports_spans():
        return lambda: None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service)})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(), schedule_delay_millis=200))
    trace.set_tracer_provider(provider)
    return provider.shutdown
