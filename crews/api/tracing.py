"""Server spans for the HTTP API, continuing the caller's trace (W3C ``traceparent`` in the request).

OpenTelemetry's ASGI middleware opens one ``SERVER`` span per request with the
context it extracts from the request headers, so an outside caller's trace
runs on through the job it submits (the job's NATS messages carry the span on,
docs/architecture.md, "Subjects and streams"). The span is named by the route template once routing
has matched (``GET /jobs/{job}``), never by the raw path, so job ids stay out
of span names. Event streams are one span each, for as long as they stay open.
"""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

from crews.api.metrics import ASGIApp, Message, Receive, Scope, Send

UNTRACED = "healthz,readyz"  # probes: a span a second per replica says nothing


def instrument(app: FastAPI) -> None:
    """Trace every HTTP request of ``app`` (call after the other middleware: this one goes outermost)."""
    app.add_middleware(OpenTelemetryMiddleware, excluded_urls=UNTRACED, exclude_spans=["receive", "send"])


class SpanRoute:
    """Rename the request's server span after its route template, as the response starts.

    Added first (innermost), so it runs inside the span that ``instrument``
    opens; that span ends with the response's last body chunk, so the name is
    set when the response starts (routing has matched by then).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def named(message: Message) -> None:
            route = getattr(scope.get("route"), "path", None)
            span = trace.get_current_span()
            if message["type"] == "http.response.start" and route and span.is_recording():
                span.update_name(f"{scope['method']} {route}")
                span.set_attribute("http.route", route)
            await send(message)

        await self.app(scope, receive, named)
