"""Cost in money: the workers price every call at CREWS_LLM_PRICES; the API, the CLI and /metrics show it."""

from __future__ import annotations

import asyncio
import json
import subprocess

import httpx
import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS

from bus.settings import BusSettings
from crews.api.app import create_app
from crews.api.server import ApiServer
from crews.api.settings import ApiSettings
from crews.coordinator.settings import CrewsSettings
from crews.jobs.control import submit_job
from crews.jobs.store import RedisJobStore
from crews.spec.load import load_crew_text
from inference.testing.server import ScriptedServer
from tests.e2e.stack import CREWS, ROOT, Stack, job_events
from tests.servers import ManagedServer

PRICES = {"crews-local": {"input_per_mtok": 2.5, "output_per_mtok": 10.0}}
CREW = """
name: priced
memory: false
roles:
  researcher: {role: Researcher, goal: Find facts}
  writer: {role: Writer, goal: Write}
tasks:
  research: {description: List three facts about owls., expected_output: Facts., agent: researcher}
  write: {description: Write a line about owls., expected_output: A line., agent: writer}
"""


def price(input_tokens: int, output_tokens: int) -> float:
    p = PRICES["crews-local"]
    return (input_tokens * p["input_per_mtok"] + output_tokens * p["output_per_mtok"]) / 1e6


async def run_job(
    crew_text: str, nats_server: ManagedServer, redis_server: ManagedServer, nc: NATS, store: RedisJobStore
) -> str:
    spec = load_crew_text(crew_text, "priced.yaml")
    await store.save_crew(spec)
    with ScriptedServer() as llm:
        stack = Stack(
            nats_server.url, redis_server.url, llm.url, extra_env={"CREWS_LLM_PRICES": json.dumps(PRICES)}
        )
        try:
            stack.coordinator()
            for role in spec.roles:
                stack.worker(spec.name, role)
            job = (await submit_job(nc.jetstream(), store, spec.name, {})).id
            await job_events(nc.jetstream(), job)
        finally:
            stack.stop_all()
    return job


@pytest.fixture
def store(redis_client: aioredis.Redis) -> RedisJobStore:
    return RedisJobStore(redis_client)


async def test_cost_shown_is_tokens_times_prices(
    nats_server: ManagedServer, redis_server: ManagedServer, nc: NATS, store: RedisJobStore
) -> None:
    job = await run_job(CREW, nats_server, redis_server, nc, store)
    app = create_app(
        ApiSettings(api_keys=()),
        CrewsSettings(redis_url=redis_server.url),
        BusSettings(nats_url=nats_server.url),
    )
    async with ApiServer(app) as server, httpx.AsyncClient(base_url=server.url) as client:
        got = (await client.get(f"/jobs/{job}")).json()
        metrics = (await client.get("/metrics")).text
        listed = (await client.get("/jobs")).json()["jobs"]
        status = await asyncio.to_thread(
            subprocess.run,
            [CREWS, "status", job, "--api", server.url],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env={"COLUMNS": "160", "PATH": "/usr/bin:/bin"},
        )

    assert got["status"] == "completed"
    for step in got["steps"]:
        usage = step["usage"]
        assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
        assert step["cost_usd"] == pytest.approx(price(usage["input_tokens"], usage["output_tokens"]))
    for role in ("researcher", "writer"):
        usage = got["usage"][role]
        assert usage["cost_usd"] == pytest.approx(price(usage["input_tokens"], usage["output_tokens"]))
        assert f'crews_cost_usd_total{{crew="priced",role="{role}"}} {usage["cost_usd"]}' in metrics
    assert got["cost_usd"] == pytest.approx(sum(u["cost_usd"] for u in got["usage"].values()))
    assert got["cost_usd"] > 0
    assert listed[0]["cost_usd"] == pytest.approx(got["cost_usd"])
    assert status.returncode == 0, status.stderr
    assert f"cost: ${got['cost_usd']:.6f}" in status.stdout and "tokens and cost per role" in status.stdout


async def test_a_job_over_its_money_budget_fails_with_the_reason(
    nats_server: ManagedServer, redis_server: ManagedServer, nc: NATS, store: RedisJobStore
) -> None:
    # The first step's one call costs more than the budget, so the second step may not call at all.
    crew = CREW + "budgets: {max_cost_usd: 0.000001}\n"
    job = await run_job(crew, nats_server, redis_server, nc, store)
    record = await store.get(job)
    assert (record.status, record.steps["research"], record.steps["write"]) == (
        "failed",
        "completed",
        "failed",
    )
    assert "max_cost_usd" in record.reason
    usage = await store.usage(job)
    assert "writer" not in usage or usage["writer"].calls == 0
