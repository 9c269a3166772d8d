"""A process records spans only when it exports them, and passes the trace on either way (bus.telemetry).

Each case runs in a fresh interpreter: the global tracer provider can be set once per process, and
the test session has its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bus.telemetry import ENDPOINT_VARIABLES

CALLER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
PROBE = f"""
import json
from opentelemetry import trace
from bus.telemetry import setup_tracing
from bus.tracing import extract, inject

shutdown = setup_tracing("probe")
with trace.get_tracer("probe").start_as_current_span("hop", context=extract({{"traceparent": "{CALLER}"}})) as span:
    sent = inject({{}})
    print(json.dumps({{"recording": span.is_recording(), "traceparent": sent.get("traceparent", "")}}))
shutdown()
"""


def probe(**env: str) -> dict[str, object]:
    """What a hop of a process started with ``env`` records and sends on, given the caller's trace."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=clean | env, capture_output=True, text=True, timeout=60, check=True
    )
    found: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def test_a_process_that_exports_nothing_records_nothing_and_passes_the_callers_trace_on() -> None:
    assert probe() == {"recording": False, "traceparent": CALLER}


@pytest.mark.parametrize("variable", ENDPOINT_VARIABLES)
def test_a_process_that_exports_records_its_hop_as_a_child_of_the_caller(variable: str) -> None:
    found = probe(**{variable: "http://127.0.0.1:9"})  # nothing listens: the spans are dropped at exit
    _, trace_id, parent, _ = str(found["traceparent"]).split("-")
    assert found["recording"] is True
    assert trace_id == CALLER.split("-")[1] and parent != CALLER.split("-")[2]


def test_the_sdk_disabled_wins_over_an_endpoint() -> None:
    found = probe(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9", OTEL_SDK_DISABLED="true")
    assert found == {"recording": False, "traceparent": CALLER}
