"""A job on real role worker processes whose pool is discovered by DNS and overflows to a managed API.

Everything is real: the coordinator and the workers are ``crews`` processes on real NATS and Redis;
their pool is ``CREWS_LLM_DISCOVER=http://localhost:<port>/v1`` resolved by the system resolver
(``getaddrinfo``) to the scripted pool server on 127.0.0.1; the "managed API" is another scripted
server on 127.0.0.4 serving its own model. The pool's ``/metrics`` report 40 waiting requests, so
the workers send every call to the overflow, and the job's cost is the overflow's price.
"""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS

from crews.jobs.control import submit_job
from crews.jobs.store import RedisJobStore
from crews.spec.load import load_crew_text
from inference.testing.script import Script
from inference.testing.server import ScriptedServer
from tests.e2e.stack import Stack, job_events
from tests.servers import ManagedServer

PRICES = {
    "crews-local": {"input_per_mtok": 1.0, "output_per_mtok": 1.0},
    "managed-mini": {"input_per_mtok": 300.0, "output_per_mtok": 900.0},
}
CREW = """
name: bursty
memory: false
roles:
  researcher: {role: Researcher, goal: Find facts}
  writer: {role: Writer, goal: Write}
tasks:
  research: {description: List three facts about owls., expected_output: Facts., agent: researcher}
  write: {description: Write a line about owls., expected_output: A line., agent: writer}
"""


def managed_price(input_tokens: int, output_tokens: int) -> float:
    p = PRICES["managed-mini"]
    return (input_tokens * p["input_per_mtok"] + output_tokens * p["output_per_mtok"]) / 1e6


async def test_an_overloaded_pool_sends_a_jobs_calls_to_the_overflow_at_its_price(
    nats_server: ManagedServer, redis_server: ManagedServer, nc: NATS, redis_client: aioredis.Redis
) -> None:
    store = RedisJobStore(redis_client)
    spec = load_crew_text(CREW, "bursty.yaml")
    await store.save_crew(spec)
    overflow_script = Script(model="managed-mini", default=["Owls fly silently at night."])
    with ScriptedServer() as pool, ScriptedServer(overflow_script, host="127.0.0.4") as managed:
        pool.set_waiting(40)
        env = {
            "CREWS_LLM_DISCOVER": f"http://localhost:{pool.port}/v1",
            "CREWS_LLM_OVERFLOW_URL": managed.url,
            "CREWS_LLM_OVERFLOW_MODEL": "managed-mini",
            "CREWS_LLM_OVERFLOW_API_KEY_ENV": "CREWS_TEST_MANAGED_KEY",
            "CREWS_TEST_MANAGED_KEY": "sk-e2e",
            "CREWS_LLM_PRICES": json.dumps(PRICES),
        }
        stack = Stack(nats_server.url, redis_server.url, "http://127.0.0.9:1/v1", extra_env=env)
        try:
            stack.coordinator()
            for role in spec.roles:
                stack.worker(spec.name, role)
            job = (await submit_job(nc.jetstream(), store, spec.name, {})).id
            await job_events(nc.jetstream(), job)
        finally:
            stack.stop_all()
        calls = managed.requests()

    record = await store.get(job)
    assert record.status == "completed"
    assert pool.requests() == []  # CREWS_LLM_URLS (a dead address) was never used either
    assert {(c.role, c.body["model"], c.authorization) for c in calls} == {
        ("researcher", "managed-mini", "Bearer sk-e2e"),
        ("writer", "managed-mini", "Bearer sk-e2e"),
    }
    usage = await store.usage(job)
    for role in ("researcher", "writer"):
        used = usage[role]
        assert used.input_tokens > 0
        assert used.cost_usd == pytest.approx(managed_price(used.input_tokens, used.output_tokens))
