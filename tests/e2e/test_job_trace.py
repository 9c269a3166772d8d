"""One trace id covers every span of a job, across the test, the coordinator and the worker processes."""

from __future__ import annotations

import redis.asyncio as aioredis
from nats.aio.client import Client as NATS
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from crews.jobs.control import submit_job
from crews.jobs.store import RedisJobStore
from crews.spec.load import load_crew_text
from inference.testing.script import Script
from inference.testing.server import ScriptedServer
from tests.e2e.otlp_sink import OtlpSink
from tests.e2e.stack import Stack, job_events
from tests.servers import ManagedServer

OUR_SCOPES = {"crews", "bus", "roles", "inference"}
CREW = """
name: traced
roles:
  first: {role: First, goal: Start, tools: [calculator]}
  second: {role: Second, goal: Finish}
tasks:
  one: {description: Add two numbers., expected_output: A number., agent: first}
  two: {description: Say it., expected_output: A sentence., agent: second}
"""


async def test_one_trace_covers_every_span_of_a_job_across_processes(
    nats_server: ManagedServer,
    redis_server: ManagedServer,
    nc: NATS,
    redis_client: aioredis.Redis,
    spans: InMemorySpanExporter,
) -> None:
    script = Script.model_validate(
        {
            "rules": [
                {
                    "role": "first",
                    "replies": [
                        {"tool_calls": [{"name": "calculator", "arguments": {"expression": "2 + 3"}}]},
                        "5",
                    ],
                },
                {"role": "second", "replies": ["The answer is 5."]},
            ]
        }
    )
    store = RedisJobStore(redis_client)
    spec = load_crew_text(CREW, "traced.yaml")
    await store.save_crew(spec)
    with ScriptedServer(script) as llm, OtlpSink() as sink:
        stack = Stack(
            nats_server.url, redis_server.url, llm.url, {"OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint}
        )
        try:
            stack.coordinator()
            stack.worker("traced", "first")
            stack.worker("traced", "second")
            js = nc.jetstream()
            with trace.get_tracer("test").start_as_current_span("client") as root:
                job = (await submit_job(js, store, "traced", {})).id
            await job_events(js, job)
        finally:
            stack.stop_all()  # SIGTERM: each process flushes its spans before it exits

    assert (await store.get(job)).status == "completed"
    trace_id = format(root.get_span_context().trace_id, "032x")
    by_service: dict[str, set[str]] = {}
    ours = [s for s in sink.spans if s.scope.split(".")[0] in OUR_SCOPES]  # not the SDKs' lifecycle spans
    for span in ours:
        by_service.setdefault(span.service, set()).add(span.name)
        assert span.trace_id == trace_id, f"{span.service}/{span.name} is in another trace"
    assert "process crews.jobs.submit" in by_service["crews-coordinator"]
    first, second = by_service["crews-role-traced-first"], by_service["crews-role-traced-second"]
    assert {"process crews.tasks.traced.first", "invoke_agent first", "execute_tool calculator"} <= first
    assert {"process crews.tasks.traced.second", "invoke_agent second"} <= second
    assert any(name.startswith("chat ") for name in first) and any(
        name.startswith("chat ") for name in second
    )
    chat = next(s for s in sink.spans if s.name.startswith("chat ") and s.service.endswith("first"))
    assert {"gen_ai.operation.name", "gen_ai.request.model", "gen_ai.usage.input_tokens"} <= set(
        chat.attributes
    )
    submitted = [s for s in spans.get_finished_spans() if s.name == "submit job"]
    assert submitted and submitted[0].context is not None
    assert format(submitted[0].context.trace_id, "032x") == trace_id
