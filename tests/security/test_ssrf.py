"""SSRF: a crew file cannot point a worker anywhere; declared agents keep to their host and to public addresses.

Through the real stack: a coordinator and ``crews role`` processes whose
operator declares outside agents (``CREWS_A2A_AGENTS``). The review reproduced:
a crew registered over the API made a worker fetch
``http://127.0.0.1:<port>/latest/meta-data/…`` five times; by reading, a card
could point the JSON-RPC call anywhere; ``headers_from`` sent any variable.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
import redis.asyncio as aioredis
from a2a.server.request_handlers.response_helpers import agent_card_to_dict
from a2a.types import AgentInterface, TaskState
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from nats.aio.client import Client as NATS

from crews.api.server import ApiServer
from crews.jobs.control import submit_job
from crews.jobs.store import RedisJobStore
from crews.spec.load import load_crew_text
from inference.testing.script import Script
from inference.testing.server import ScriptedServer
from tests.crews.api.conftest import StartApi
from tests.e2e.outside_agent import shouter_card
from tests.e2e.stack import Stack, job_events, step_states
from tests.servers import ManagedServer


@dataclass
class Target:
    """An HTTP server that records every request it gets; it may serve an agent card pointing elsewhere."""

    card_points_to: str | None = None
    requests: list[str] = field(default_factory=list)
    url: str = ""


@asynccontextmanager
async def serving(target: Target) -> AsyncIterator[Target]:
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def anything(path: str, request: Request) -> Response:
        target.requests.append(f"{request.method} /{path}")
        if path.endswith("agent-card.json") and target.card_points_to:
            interface = AgentInterface(
                url=target.card_points_to, protocol_binding="JSONRPC", protocol_version="1.0"
            )
            return JSONResponse(agent_card_to_dict(shouter_card([interface])))
        return JSONResponse({"ami-id": "secret-metadata"}, status_code=404)

    async with ApiServer(app) as server:
        target.url = server.url
        yield target


def crew(name: str, agent: str) -> str:
    return (
        f"name: {name}\nroles:\n  member: {{role: Outside, goal: Help, engine: a2a, agent: {agent}}}\n"
        "tasks:\n  t: {description: Do it., expected_output: Done., agent: member}\n"
    )


@pytest.fixture
def llm() -> Iterator[ScriptedServer]:
    with ScriptedServer(Script.model_validate({"rules": []})) as server:
        yield server


async def test_outside_agents_reach_only_what_the_operator_declared(
    nats_server: ManagedServer, redis_server: ManagedServer, llm: ScriptedServer, nc: NATS,
    redis_client: aioredis.Redis,
) -> None:  # fmt: skip
    store = RedisJobStore(redis_client)
    async with (
        serving(Target()) as internal,
        serving(Target()) as elsewhere,
        serving(Target()) as refusing,
        serving(Target()) as redirecting,
    ):
        redirecting.card_points_to = f"http://localhost:{elsewhere.url.rsplit(':', 1)[1]}/rpc"
        agents = [
            {"name": "internal", "url": f"{internal.url}/latest/meta-data/"},  # loopback, not allowed
            {"name": "metadata", "url": "http://169.254.169.254/latest/meta-data/", "allow_private": True},
            {"name": "refusing", "url": refusing.url, "allow_private": True},  # answers 404
            {"name": "redirecting", "url": redirecting.url, "allow_private": True},
        ]
        stack = Stack(
            nats_server.url,
            redis_server.url,
            llm.url,
            extra_env={"CREWS_A2A_AGENTS": json.dumps(agents), "CREWS_MAX_DELIVER": "5"},
        )
        try:
            jobs = {}
            for case in ("internal", "metadata", "refusing", "redirecting", "undeclared"):
                spec = load_crew_text(crew(f"ssrf_{case}", case), f"{case}.yaml")
                await store.save_crew(spec)
            stack.coordinator()
            for case in ("internal", "metadata", "refusing", "redirecting", "undeclared"):
                stack.worker(f"ssrf_{case}", "member")
                jobs[case] = (await submit_job(nc.jetstream(), store, f"ssrf_{case}", {})).id
            reasons = {}
            for case, job in jobs.items():
                events = await job_events(nc.jetstream(), job)
                record = await store.get(job)
                assert record.status == "failed", (case, record.reason)
                working = [s for s in step_states(events, job) if s[1] == TaskState.TASK_STATE_WORKING]
                assert len(working) == 1, (case, record.reason)  # refused once: never retried
                reasons[case] = record.reason
        finally:
            stack.stop_all()

    assert "resolves to 127.0.0.1" in reasons["internal"] and "allow_private" in reasons["internal"]
    assert internal.requests == []  # refused before connecting
    assert "link-local or cloud metadata" in reasons["metadata"]
    assert "refused the step" in reasons["refusing"] and refusing.requests == [
        "GET /.well-known/agent-card.json"
    ]
    assert "secret-metadata" not in reasons["refusing"]
    assert "not to its declared origin" in reasons["redirecting"]
    assert elsewhere.requests == []  # the card could not send the call there
    assert "has not declared" in reasons["undeclared"] and "internal, metadata" in reasons["undeclared"]


async def test_a_crew_file_cannot_carry_an_address_or_a_variable_to_read(
    start_api: StartApi, redis_client: aioredis.Redis
) -> None:
    async with start_api() as client:
        for extra in (
            "url: http://127.0.0.1:9/latest/meta-data/",
            "nats: crews.events",
            "headers_from: CREWS_REDIS_URL",
            "command: [sh, -c, env]",
        ):
            text = crew("leaky", "x").replace("agent: x}", f"agent: x, {extra}}}")
            answer = await client.post("/crews", content=text, headers={"content-type": "application/yaml"})
            field_name = extra.split(":")[0]
            assert answer.status_code == 422, answer.text
            [issue] = answer.json()["issues"]
            assert issue["field"] == f"roles.member.{field_name}"
            assert "declared by the operator" in issue["message"] and "CREWS_A2A_AGENTS" in issue["message"]
        assert (await client.get("/crews")).json()["crews"] == []
