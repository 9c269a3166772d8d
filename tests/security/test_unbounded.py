"""Oversized and unbounded requests: every number a crew file or a request sets has a ceiling; every principal a rate.

The review reproduced: ``max_iter: 100000000``, ``scaling.min: 5000``, any
``max_tokens``, any number of roles, job timeouts up to 7 days, no rate limit,
no cap on open streams.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
import redis.asyncio as aioredis

from bus.contracts.step import LLMParams, RolePrompt, StepKeys, StepWork
from inference.errors import BudgetExceeded
from inference.results import Usage
from roles.settings import RoleSettings
from roles.step.usage import RedisUsage
from roles.worker import bounded
from tests.crews.api.conftest import CREW_YAML, StartApi

YAML = {"content-type": "application/yaml"}


def messages(response: httpx.Response) -> dict[str, str]:
    return {issue["field"]: issue["message"] for issue in response.json()["issues"]}


async def test_crew_file_numbers_over_the_ceilings_are_refused(start_api: StartApi) -> None:
    greedy = (
        CREW_YAML.replace(
            "    goal: Write {words} words.\n",
            "    goal: Write {words} words.\n    max_iter: 100000000\n    scaling: {min: 5000, max: 5000}\n"
            "    llm: {max_tokens: 10000000}\n    max_execution_time: 604800\n",
        )
        + "budgets: {max_tokens: 999999999999}\n"
    )
    many = "name: many\nroles:\n" + "".join(f"  r{i}: {{role: R, goal: G}}\n" for i in range(40))
    many += "tasks:\n  t: {description: D, expected_output: O, agent: r0}\n"
    async with start_api() as client:
        refused = await client.post("/crews", content=greedy, headers=YAML)
        assert refused.status_code == 422
        found = messages(refused)
        assert set(found) == {
            "roles.writer.max_iter",
            "roles.writer.scaling.min",
            "roles.writer.scaling.max",
            "roles.writer.llm.max_tokens",
            "roles.writer.max_execution_time",
            "budgets.max_tokens",
        }, found
        assert "over this server's limit of 50 (CREWS_MAX_ITER)" in found["roles.writer.max_iter"]
        too_many = await client.post("/crews", content=many, headers=YAML)
        assert too_many.status_code == 422 and "CREWS_MAX_ROLES" in too_many.text
        assert (await client.get("/crews")).json()["crews"] == []

    async with start_api() as client:  # the operator's ceilings come from the settings
        ok = await client.post("/crews", content=CREW_YAML, headers=YAML)
        assert ok.status_code == 201


async def test_job_timeouts_have_a_ceiling(start_api: StartApi) -> None:
    async with start_api() as client:
        await client.post("/crews", content=CREW_YAML, headers=YAML)
        week = await client.post("/crews/digest/jobs", json={"inputs": {"topic": "x"}, "timeout_s": 600_000})
        assert week.status_code == 422 and "CREWS_MAX_JOB_TIMEOUT_S" in week.json()["message"]
        hour = await client.post("/crews/digest/jobs", json={"inputs": {"topic": "x"}, "timeout_s": 3600})
        assert hour.status_code == 202


async def test_submits_per_minute_and_running_jobs_are_limited(start_api: StartApi) -> None:
    async with start_api(api_submits_per_minute=3) as client:
        await client.post("/crews", content=CREW_YAML, headers=YAML)
        answers = [await client.post("/crews/digest/jobs", json={"inputs": {"topic": "x"}}) for _ in range(4)]
        assert [a.status_code for a in answers] == [202, 202, 202, 429]
        assert 1 <= int(answers[-1].headers["retry-after"]) <= 61
        assert "CREWS_API_SUBMITS_PER_MINUTE" in answers[-1].json()["message"]

    async with start_api(api_running_jobs=2) as client:
        jobs = [(await client.post("/crews/digest/jobs", json={"inputs": {"topic": "x"}})) for _ in range(2)]
        full = await client.post("/crews/digest/jobs", json={"inputs": {"topic": "x"}})
        assert full.status_code == 429 and "CREWS_API_RUNNING_JOBS" in full.json()["message"]
        # the 3 submitted above are running too: cancel until there is room
        for job in (await client.get("/jobs")).json()["jobs"]:
            await client.post(f"/jobs/{job['id']}/cancel", json={})
        assert (await client.post("/crews/digest/jobs", json={"inputs": {"topic": "x"}})).status_code == 202
        assert len(jobs) == 2


async def test_open_event_streams_are_limited(start_api: StartApi) -> None:
    async with start_api(api_streams=2) as client:
        await client.post("/crews", content=CREW_YAML, headers=YAML)
        job = (await client.post("/crews/digest/jobs", json={"inputs": {"topic": "x"}})).json()["id"]
        streams = [client.stream("GET", f"/jobs/{job}/events") for _ in range(2)]
        opened = [await s.__aenter__() for s in streams]
        assert [r.status_code for r in opened] == [200, 200]
        third = await client.get(f"/jobs/{job}/events")
        assert third.status_code == 429 and third.headers["retry-after"] == "5"
        await client.post(f"/jobs/{job}/cancel", json={})  # the job ends: both streams end on the server
        for response, stream in zip(opened, streams, strict=True):
            assert "TASK_STATE_CANCELED" in "".join([chunk async for chunk in response.aiter_text()])
            await stream.__aexit__(None, None, None)
        assert (await client.get(f"/jobs/{job}/events")).status_code == 200  # their places are free again


async def test_a_body_over_the_size_limit_is_refused(start_api: StartApi) -> None:
    async with start_api(api_max_body_bytes=10_000) as client:
        big = await client.post("/crews", content="#" * 20_000, headers=YAML)
        assert big.status_code == 413


async def test_concurrent_llm_calls_cannot_overshoot_the_budget_by_more_than_one_call(
    redis_client: aioredis.Redis,
) -> None:
    budget = RedisUsage(redis_client, "crews:{job:b1}:usage", limit=250)

    async def call() -> bool:
        try:
            await budget.check("b1", "writer", reserve=100)
        except BudgetExceeded:
            return False
        await asyncio.sleep(0)  # every call is in flight before any is recorded
        await budget.record("b1", "writer", Usage(input_tokens=60, output_tokens=40), reserved=100)
        return True

    admitted = await asyncio.gather(*(call() for _ in range(10)))
    assert sum(admitted) == 3  # without reservations all ten would pass the check
    assert await budget.used_tokens() == 300  # the limit, plus at most one call
    assert await redis_client.get(budget.reserved_key) == "0"
    with pytest.raises(BudgetExceeded, match="has used 300 of its 250 tokens"):
        await budget.check("b1", "writer", reserve=1)


def test_steps_are_clamped_to_the_ceilings_and_get_a_default_budget() -> None:
    work = StepWork(
        job="j", crew="c", step="s", task="s", role="r", prompt=RolePrompt(role="R", goal="G"),
        description="d", max_iter=100_000_000, llm=LLMParams(max_tokens=10_000_000), keys=StepKeys.for_job("j"),
    )  # fmt: skip
    settings = RoleSettings(default_job_tokens=5000)
    clamped = bounded(work, settings)
    assert (clamped.max_iter, clamped.llm.max_tokens) == (settings.limits.iter, settings.limits.llm_tokens)
    assert (
        clamped.max_tokens_budget == 5000 and clamped.max_execution_time_s == settings.limits.execution_time_s
    )
