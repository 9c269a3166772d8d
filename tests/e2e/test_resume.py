"""A killed worker's step resumes from its checkpointed tool loop (real worker processes, SIGKILL).

The step calls the test-only ``ledger_append`` tool three times, then answers.
The worker is killed after the k-th tool call — while it waits for the LLM's
next answer, so the k-th result is recorded — and a new worker takes the
redelivered step: it must resume at turn k, run no tool call twice, and ask
no recorded LLM turn again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from nats.aio.client import Client as NATS

from crews.jobs.control import submit_job
from crews.jobs.store import RedisJobStore, job_keys
from crews.spec.load import load_crew_text
from inference.testing.script import Script
from inference.testing.server import ScriptedServer
from tests.chaos.ledger import LEDGER_ENV, read_ledger
from tests.e2e.stack import Stack, job_events
from tests.servers import ManagedServer
from tests.waits import eventually

CREW = """
name: books
memory: false
roles:
  clerk: {role: Clerk, goal: Keep the books, tools: [{name: ledger_append, approval: none}]}
tasks:
  post: {description: Post three entries., expected_output: Done., agent: clerk}
"""
TOOL_CALLS = 3


def ledger_call(n: int, **extra: Any) -> dict[str, Any]:
    return {"tool_calls": [{"name": "ledger_append", "arguments": {"entry": f"entry-{n}"}}], **extra}


def script_killed_after(k: int) -> Script:
    """Three ledger calls and an answer; the answer after the k-th call is slow once (the kill lands there)."""
    replies: list[Any] = [ledger_call(n) for n in range(1, TOOL_CALLS + 1)] + [{"text": "posted"}]
    replies.insert(k, {**replies[k], "latency_s": 120})
    return Script.model_validate({"rules": [{"role": "clerk", "replies": replies}]})


@pytest.fixture
def llm() -> Iterator[ScriptedServer]:
    with ScriptedServer(Script()) as server:
        yield server


@pytest.fixture
def stack(
    nats_server: ManagedServer, redis_server: ManagedServer, llm: ScriptedServer, tmp_path: Path
) -> Iterator[Stack]:
    env = {"CREWS_ACK_WAIT_S": "2", LEDGER_ENV: str(tmp_path / "ledger.jsonl")}
    running = Stack(nats_server.url, redis_server.url, llm.url, extra_env=env)
    try:
        yield running
    finally:
        running.stop_all()


@pytest.fixture
async def store(redis_client: aioredis.Redis) -> AsyncIterator[RedisJobStore]:
    yield RedisJobStore(redis_client)


async def submit(stack: Stack, nc: NATS, store: RedisJobStore) -> str:
    spec = load_crew_text(CREW, "crew.yaml")
    await store.save_crew(spec)
    return (await submit_job(nc.jetstream(), store, spec.name, {})).id


def tool_messages(body: dict[str, Any]) -> int:
    return sum(1 for message in body["messages"] if message["role"] == "tool")


@pytest.mark.parametrize("k", [1, 2, 3])
async def test_a_worker_killed_after_the_kth_tool_call_is_resumed_at_turn_k(
    k: int, stack: Stack, llm: ScriptedServer, nc: NATS, store: RedisJobStore, redis_client: aioredis.Redis
) -> None:
    llm.set_script(script_killed_after(k))
    ledger = Path(stack.extra_env[LEDGER_ENV])
    stack.coordinator()
    first = stack.ledger_worker("books", "clerk")
    job = await submit(stack, nc, store)
    await llm.wait_for_requests(k + 1)  # answer k+1 is asked for: tool call k ran and its result is recorded
    assert len(read_ledger(ledger)) == k
    first.kill()
    stack.ledger_worker("books", "clerk")

    await job_events(nc.jetstream(), job)

    record = await store.get(job)
    assert (record.status, record.output) == ("completed", "posted")
    lines = read_ledger(ledger)
    assert [line.key for line in lines] == [f"{job}:post:{turn}:1" for turn in range(1, TOOL_CALLS + 1)]
    assert [line.entry for line in lines] == ["entry-1", "entry-2", "entry-3"]
    assert all(line.applied for line in lines)
    assert len({line.pid for line in lines[:k]} | {line.pid for line in lines[k:]}) == (2 if k < 3 else 1)
    requests = llm.requests()
    assert len(requests) == TOOL_CALLS + 2  # one per turn, plus the one the kill cut off
    resumed = requests[k + 1]  # the new worker's first request: it carries the k recorded tool results
    assert tool_messages(resumed.body) == k
    assert [tool_messages(r.body) for r in requests] == [*range(k + 1), *range(k, TOOL_CALLS + 1)]
    usage = (await store.usage(job))["clerk"]
    assert usage.calls == TOOL_CALLS + 1  # every answer received, none asked twice
    result = (await store.results(job))["post"]
    assert (result.attempt, result.resumed_turns) == (2, k)
    assert record.attempts == {"post": 2}
    assert await redis_client.hkeys(job_keys(job).turns) == []  # the checkpoint went with the result


async def test_a_failed_attempt_is_counted_and_the_retry_resumes_after_it(
    stack: Stack, llm: ScriptedServer, nc: NATS, store: RedisJobStore
) -> None:
    stack.extra_env["CREWS_LLM_MAX_RETRIES"] = "0"
    llm.set_script(
        Script.model_validate(
            {"rules": [{"role": "clerk", "replies": [ledger_call(1), {"error": 500}, "posted"]}]}
        )
    )
    stack.coordinator()
    stack.ledger_worker("books", "clerk")
    job = await submit(stack, nc, store)

    await job_events(nc.jetstream(), job)

    record = await store.get(job)
    assert record.status == "completed"
    assert record.attempts == {"post": 2}
    *_, last = llm.requests()
    assert len(llm.requests()) == 3
    assert tool_messages(last.body) == 1  # the retry did not ask turn 1 again
    usage = (await store.usage(job))["clerk"]
    assert usage.calls == 2  # the first attempt's answer counts, the retry's too
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert len(read_ledger(Path(stack.extra_env[LEDGER_ENV]))) == 1
    assert await eventually(lambda: _result_attempt(store, job)) == 2


async def _result_attempt(store: RedisJobStore, job: str) -> int | None:
    return (await store.results(job))["post"].attempt
