"""An outside caller's trace continues through the HTTP API into the job: one trace id, parented spans."""

from __future__ import annotations

import httpx
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS

from crews.jobs.store import RedisJobStore
from crews.local.servers import free_port
from crews.spec.load import load_crew_text
from inference.testing.server import ScriptedServer
from tests.e2e.otlp_sink import OtlpSink
from tests.e2e.stack import Stack, job_events
from tests.servers import ManagedServer

CREW = """
name: called
roles:
  only: {role: Only, goal: Answer}
tasks:
  answer: {description: Say hello., expected_output: A greeting., agent: only}
"""
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


async def test_a_callers_traceparent_continues_into_the_api_and_the_job(
    nats_server: ManagedServer, redis_server: ManagedServer, nc: NATS, redis_client: aioredis.Redis
) -> None:
    store = RedisJobStore(redis_client)
    spec = load_crew_text(CREW, "called.yaml")
    await store.save_crew(spec)
    port = free_port()
    with ScriptedServer() as llm, OtlpSink() as sink:
        stack = Stack(
            nats_server.url,
            redis_server.url,
            llm.url,
            {"OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint, "CREWS_API_PORT": str(port)},
        )
        try:
            stack.coordinator()
            stack.worker("called", "only")
            stack.start("api", ready="api ready on")
            headers = {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"}
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                submitted = await client.post("/crews/called/jobs", json={}, headers=headers)
                assert submitted.status_code == 202, submitted.text
                job = submitted.json()["id"]
                await job_events(nc.jetstream(), job)
                assert (await client.get(f"/jobs/{job}")).status_code == 200  # a request without a caller
        finally:
            stack.stop_all()  # SIGTERM: each process flushes its spans

    assert (await store.get(job)).status == "completed"
    api = [s for s in sink.spans if s.service == "crews-api"]
    [server] = [s for s in api if s.name == "POST /crews/{name}/jobs"]
    assert (server.trace_id, server.parent_span_id) == (CALLER_TRACE, CALLER_SPAN)
    assert "/crews/{name}/jobs" in server.attributes.get("http.route", "")
    [submit] = [s for s in api if s.name == "submit job"]
    assert (submit.trace_id, submit.parent_span_id) == (CALLER_TRACE, server.span_id)
    in_trace = {(s.service, s.name) for s in sink.spans if s.trace_id == CALLER_TRACE}
    assert ("crews-role-called-only", "invoke_agent only") in in_trace
    assert any(service == "crews-coordinator" for service, _ in in_trace)
    [read] = [s for s in api if s.name == "GET /jobs/{job}"]
    assert read.trace_id != CALLER_TRACE and read.parent_span_id == ""
    assert not any(job in s.name for s in api)  # span names carry route templates, not ids
