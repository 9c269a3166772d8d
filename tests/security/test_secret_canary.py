"""Secrets stay secret: a full job whose API key, outside agent credential and tool secret are canaries.

The real stack runs as processes (API, coordinator, a native worker with a
tool, a worker whose role is an outside A2A agent), exporting spans to a real
OTLP receiver. The API key of the caller, the outside agent's credential
(given to its worker in a variable the operator declares) and a secret in the
environment (a tool's database URL) are canaries; the tool fails once with an
error that quotes its secret, and the step is retried. Then no canary may
appear in any process's output, any exported span, any job event, any Redis
key or value, or any answer of the API.
"""

from __future__ import annotations

import json
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from google.protobuf import json_format
from nats.aio.client import Client as NATS

from crews.jobs.store import RedisJobStore
from crews.local.servers import free_port
from inference.testing.script import Script
from inference.testing.server import ScriptedServer
from roles.framing import block_text
from tests.e2e.otlp_sink import OtlpSink
from tests.e2e.outside_agent import Shouter, serve_over_http
from tests.e2e.stack import Stack, job_events, register
from tests.security.tools_worker import DB_URL_ENV, FACTS, MARKER_ENV
from tests.servers import ManagedServer

API_KEY = f"canary-api-key-{secrets.token_hex(8)}"
AGENT_KEY = f"canary-agent-key-{secrets.token_hex(8)}"
ENV_SECRET = f"canary-env-secret-{secrets.token_hex(8)}"
CANARIES = {"API key": API_KEY, "outside agent credential": AGENT_KEY, "environment secret": ENV_SECRET}
SCOPES = ["crews:write", "jobs:submit", "jobs:read", "approvals:decide"]
CREW = """
name: canaried
inputs:
  topic: {description: What to write about}
roles:
  researcher: {role: Researcher, goal: "Find facts about {topic}", tools: [lookup_facts]}
  shouter: {role: Outside writer, goal: "Write about {topic}", engine: a2a, agent: shouter}
tasks:
  research: {description: "Research {topic}.", expected_output: Three facts., agent: researcher}
  write: {description: "Write about {topic}.", expected_output: One loud line., agent: shouter}
"""


@pytest.fixture
def llm() -> Iterator[ScriptedServer]:
    call = {"tool_calls": [{"id": "call-1", "name": "lookup_facts", "arguments": {"topic": "bees"}}]}
    script = Script.model_validate({"rules": [{"role": "researcher", "replies": [call, "FACT-1 FACT-2"]}]})
    with ScriptedServer(script) as server:
        yield server


class Answers:
    """Every answer the API gave the test, kept as text."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client, self.texts = client, []  # type: ignore[var-annotated]

    async def get(self, path: str) -> httpx.Response:
        return self._keep(await self.client.get(path))

    async def post(self, path: str, body: object) -> httpx.Response:
        return self._keep(await self.client.post(path, json=body))

    def _keep(self, response: httpx.Response) -> httpx.Response:
        self.texts.append(f"{response.status_code} {response.headers}\n{response.text}")
        return response


async def redis_dump(redis_client: aioredis.Redis) -> str:
    """Every key of the server and its value, whatever its type."""
    lines = []
    async for key in redis_client.scan_iter(count=500):
        kind = await redis_client.type(key)
        if kind == "string":
            value: object = await redis_client.get(key)
        elif kind == "hash":
            value = await redis_client.hgetall(key)
        elif kind == "list":
            value = await redis_client.lrange(key, 0, -1)
        elif kind == "set":
            value = await redis_client.smembers(key)
        elif kind == "zset":
            value = await redis_client.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            value = await redis_client.xrange(key)
        else:
            value = f"<{kind}>"
        lines.append(f"{key} ({kind}): {value}")
    return "\n".join(lines)


def stack_env(sink: OtlpSink, port: int, agent_url: str, tmp_path: Path) -> dict[str, str]:
    agents = [
        {"name": "shouter", "url": agent_url, "authorization_env": "SHOUTER_KEY", "allow_private": True}
    ]
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
        "CREWS_API_PORT": str(port),
        "CREWS_API_KEYS": json.dumps([{"key": API_KEY, "principal": "canary-tenant", "scopes": SCOPES}]),
        "CREWS_A2A_AGENTS": json.dumps(agents),
        "SHOUTER_KEY": AGENT_KEY,
        DB_URL_ENV: f"postgres://facts:{ENV_SECRET}@facts-db.internal:5432/facts",
        MARKER_ENV: str(tmp_path / "lookup-failed-once"),
    }


async def test_no_secret_reaches_logs_spans_events_redis_or_api_answers(
    llm: ScriptedServer,
    nats_server: ManagedServer,
    redis_server: ManagedServer,
    nc: NATS,
    redis_client: aioredis.Redis,
    tmp_path: Path,
) -> None:
    store = RedisJobStore(redis_client)
    await register(store, CREW, "canaried.yaml")
    port, shouter = free_port(), Shouter()
    async with serve_over_http(shouter, key=AGENT_KEY) as agent_url:
        with OtlpSink() as sink:
            env = stack_env(sink, port, agent_url, tmp_path)
            stack = Stack(nats_server.url, redis_server.url, llm.url, env, log_dir=tmp_path / "logs")
            try:
                stack.coordinator()
                stack.start_argv(
                    "flaky worker",
                    [sys.executable, "-m", "tests.security.tools_worker", "canaried/researcher"],
                    ready="role canaried/researcher ready",
                )
                stack.worker("canaried", "shouter")
                stack.start("api", ready="api ready on")
                headers = {"Authorization": f"Bearer {API_KEY}"}
                async with httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30
                ) as client:
                    api = Answers(client)
                    submitted = await api.post("/crews/canaried/jobs", {"inputs": {"topic": "bees"}})
                    assert submitted.status_code == 202, submitted.text
                    job = submitted.json()["id"]
                    events = await job_events(nc.jetstream(), job, timeout=90)
                    for path in (f"/jobs/{job}", f"/jobs/{job}/events", f"/jobs/{job}/approvals", "/jobs"):
                        assert (await api.get(path)).status_code == 200, path
                    assert (await api.get("/crews")).status_code == 200
            finally:
                stack.stop_all()  # SIGTERM: each process flushes its spans and its output

    # the job ran as the canaries' owners meant: the key was accepted, the agent reached, the tool retried
    record = await store.get(job)
    assert (record.status, record.output, record.owner) == ("completed", "WRITE ABOUT BEES.", "canary-tenant")
    assert (tmp_path / "lookup-failed-once").exists()
    researcher = [r for r in llm.requests() if r.role == "researcher"]
    assert block_text(researcher[-1].body["messages"][-1]["content"], "tool_output") == f"bees: {FACTS}"
    assert len(shouter.received) == 1
    logs = "\n".join(path.read_text() for path in sorted((tmp_path / "logs").glob("*.log")))
    assert "ConnectionError" in logs  # the failure happened, and was logged by its type

    places = {
        "process output": logs,
        "exported spans": b"".join(sink.bodies).decode("utf-8", "replace")
        + "\n".join(span.dump for span in sink.spans),
        "job events": "\n".join(json_format.MessageToJson(event) for event in events),
        "Redis": await redis_dump(redis_client),
        "API answers": "\n".join(api.texts),
    }
    assert any(s.name == "execute_tool lookup_facts" for s in sink.spans), sorted(
        {(s.service, s.name) for s in sink.spans}
    )
    leaks = [
        f"{what} in {where}" for where, text in places.items() for what, c in CANARIES.items() if c in text
    ]
    assert not leaks, leaks
