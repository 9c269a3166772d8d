"""Jobs: submit (inputs checked first, Idempotency-Key), get, list with filters, cancel, and their errors."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import httpx
import pytest
from nats.js import JetStreamContext

from bus import subjects
from bus.contracts.result import StepResult, StepUsage
from crews.jobs.store import RedisJobStore, job_keys
from crews.plan.planner import plan
from tests.crews.api.conftest import CREW_YAML, submit


async def test_submit_records_and_publishes_the_job(
    client: httpx.AsyncClient, crew: str, js: JetStreamContext
) -> None:
    response = await client.post(f"/crews/{crew}/jobs", json={"inputs": {"topic": "bees"}})
    assert response.status_code == 202
    job = response.json()
    assert response.headers["location"] == f"/jobs/{job['id']}"
    assert (job["crew"], job["status"], job["finished_at"]) == ("digest", "submitted", None)
    assert (await js.stream_info(subjects.JOBS_STREAM)).state.messages == 1

    got = (await client.get(f"/jobs/{job['id']}")).json()
    assert got["inputs"] == {"topic": "bees"}
    assert (got["status"], got["plan_version"], got["steps"], got["usage"], got["tokens"]) == (
        "submitted",
        0,
        [],
        {},
        0,
    )


async def test_unknown_crew_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/crews/nope/jobs", json={"inputs": {}})
    assert response.status_code == 404
    assert response.json()["error"] == "crew_not_found"


async def test_missing_input_is_422_naming_it(client: httpx.AsyncClient, crew: str) -> None:
    bodies: list[dict[str, object]] = [{"inputs": {}}, {}]
    for body in bodies:
        response = await client.post(f"/crews/{crew}/jobs", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "inputs_invalid"
        assert "missing input 'topic' (What to write about)" in response.json()["message"]

    typo = await client.post(f"/crews/{crew}/jobs", json={"inputs": {"topci": "bees"}})
    assert "'topci' was given: did you mean 'topic'?" in typo.json()["message"]
    assert (await client.get("/jobs")).json() == {"jobs": []}


async def test_wrong_input_type_is_422(client: httpx.AsyncClient, crew: str) -> None:
    response = await client.post(f"/crews/{crew}/jobs", json={"inputs": {"topic": "bees", "words": "many"}})
    assert response.status_code == 422
    assert "input 'words' must be" in response.json()["message"]


async def test_malformed_bodies_are_422_saying_why(client: httpx.AsyncClient, crew: str) -> None:
    cases = {
        '{"inputs": [1, 2]}': "body 'inputs'",
        '{"inputs": {"topic": "x"}, "input": {}}': "body field 'input' is not allowed",
        '{"inputs": ': "the body is not valid JSON",
        '{"inputs": {"topic": "x"}, "timeout_s": -1}': "body 'timeout_s'",
    }
    for content, expected in cases.items():
        response = await client.post(
            f"/crews/{crew}/jobs", content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, content
        assert response.json()["error"] == "request_invalid"
        assert expected in response.json()["message"], response.json()


async def test_same_idempotency_key_twice_is_one_job(
    client: httpx.AsyncClient, crew: str, js: JetStreamContext
) -> None:
    headers = {"Idempotency-Key": "order-42"}
    body = {"inputs": {"topic": "bees"}}
    first = await client.post(f"/crews/{crew}/jobs", json=body, headers=headers)
    second = await client.post(f"/crews/{crew}/jobs", json=body, headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    assert [j["id"] for j in (await client.get("/jobs")).json()["jobs"]] == [first.json()["id"]]
    assert (await js.stream_info(subjects.JOBS_STREAM)).state.messages == 1

    other = await client.post(f"/crews/{crew}/jobs", json={"inputs": {"topic": "ants"}})
    assert other.json()["id"] != first.json()["id"]


async def test_concurrent_repeats_of_one_key_are_one_job(
    client: httpx.AsyncClient, crew: str, js: JetStreamContext
) -> None:
    def post() -> Awaitable[httpx.Response]:
        body = {"inputs": {"topic": "bees"}}
        return client.post(f"/crews/{crew}/jobs", json=body, headers={"Idempotency-Key": "k"})

    responses = await asyncio.gather(*[post() for _ in range(8)])
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["id"] for r in responses}) == 1
    assert len((await client.get("/jobs")).json()["jobs"]) == 1
    assert (await js.stream_info(subjects.JOBS_STREAM)).state.messages == 1


async def test_idempotency_key_reused_for_other_inputs_is_409(client: httpx.AsyncClient, crew: str) -> None:
    headers = {"Idempotency-Key": "order-43"}
    first = await client.post(f"/crews/{crew}/jobs", json={"inputs": {"topic": "bees"}}, headers=headers)
    reused = await client.post(f"/crews/{crew}/jobs", json={"inputs": {"topic": "ants"}}, headers=headers)
    assert reused.status_code == 409
    assert reused.json()["error"] == "idempotency_key_reused"
    assert first.json()["id"] in reused.json()["message"]


async def test_get_shows_plan_step_states_outputs_and_usage(
    client: httpx.AsyncClient, crew: str, store: RedisJobStore
) -> None:
    job = await submit(client)
    spec = await store.get_crew(crew)
    job_plan = plan(spec, {"topic": "bees"})
    await store.start(job, job_plan, spec, "")
    usage = StepUsage(input_tokens=120, output_tokens=30, cost_usd=0.00042)
    result = StepResult(output="- bees dance", role="researcher", worker="w-1", usage=usage, duration_s=1.5)
    await store.redis.hset(job_keys(job).results, "research", result.model_dump_json())
    await store.set_step_state(job, "research", "completed")
    await store.set_step_state(job, "write", "working")
    await store.record_attempt(job, "research", 1)
    await store.record_attempt(job, "write", 2)
    await store.record_attempt(job, "write", 1)  # an older delivery's event, handled late
    await store.redis.hset(
        job_keys(job).usage,
        mapping={
            "researcher:input_tokens": 120,
            "researcher:output_tokens": 30,
            "researcher:calls": 1,
            "researcher:cost_usd": "0.00042",
        },
    )

    got = (await client.get(f"/jobs/{job}")).json()
    assert (got["status"], got["plan_version"], got["tokens"], got["cost_usd"]) == (
        "running",
        1,
        150,
        0.00042,
    )
    assert got["usage"] == {
        "researcher": {"input_tokens": 120, "output_tokens": 30, "calls": 1, "cost_usd": 0.00042}
    }
    research, write = got["steps"]
    assert research == {
        "id": "research",
        "kind": "task",
        "task": "research",
        "role": "researcher",
        "depends_on": [],
        "state": "completed",
        "attempts": 1,
        "output": "- bees dance",
        "data": None,
        "worker": "w-1",
        "usage": {"input_tokens": 120, "output_tokens": 30, "cost_usd": 0.00042},
        "tokens": 150,
        "cost_usd": 0.00042,
        "duration_s": 1.5,
        "evals": [],
    }
    listed = (await client.get("/jobs")).json()["jobs"]
    assert [(j["id"], j["tokens"], j["cost_usd"]) for j in listed] == [(job, 150, 0.00042)]
    assert (write["id"], write["state"], write["attempts"], write["output"], write["depends_on"]) == (
        "write",
        "working",
        2,
        None,
        ["research"],
    )


async def test_unknown_job_is_404(client: httpx.AsyncClient) -> None:
    for response in (
        await client.get("/jobs/nope"),
        await client.post("/jobs/nope/cancel", json={}),
        await client.get("/jobs/nope/events"),
    ):
        assert response.status_code == 404
        assert response.json()["error"] == "job_not_found"


async def test_list_filters_by_crew_and_status(client: httpx.AsyncClient, crew: str) -> None:
    other = CREW_YAML.replace("name: digest", "name: other")
    await client.post("/crews", content=other, headers={"content-type": "application/yaml"})
    first, second = await submit(client), await submit(client)
    third = await submit(client, "other")
    await client.post(f"/jobs/{first}/cancel", json={})

    def ids(response: httpx.Response) -> list[str]:
        assert response.status_code == 200, response.text
        return [job["id"] for job in response.json()["jobs"]]

    assert ids(await client.get("/jobs")) == [third, second, first]
    assert ids(await client.get("/jobs", params={"crew": "digest"})) == [second, first]
    assert ids(await client.get("/jobs", params={"status": "canceled"})) == [first]
    assert ids(await client.get("/jobs", params={"crew": "digest", "status": "submitted"})) == [second]
    assert ids(await client.get("/jobs", params={"limit": 1})) == [third]

    bad = await client.get("/jobs", params={"status": "done"})
    assert bad.status_code == 422
    assert "query parameter 'status' is 'done'" in bad.json()["message"]
    assert "'completed'" in bad.json()["message"]


async def test_cancel_then_cancel_again_is_409(client: httpx.AsyncClient, crew: str) -> None:
    job = await submit(client)
    cancelled = await client.post(f"/jobs/{job}/cancel", json={})
    assert cancelled.status_code == 200
    assert (cancelled.json()["status"], cancelled.json()["reason"]) == ("canceled", "cancelled on request")
    assert cancelled.json()["finished_at"] is not None

    again = await client.post(f"/jobs/{job}/cancel", json={})
    assert again.status_code == 409
    assert again.json() == {
        "error": "job_state_conflict",
        "message": f"job {job} has already ended (canceled): there is nothing to cancel",
        "issues": [],
    }


async def test_timeout_is_recorded_as_deadline(
    client: httpx.AsyncClient, crew: str, store: RedisJobStore
) -> None:
    response = await client.post(f"/crews/{crew}/jobs", json={"inputs": {"topic": "x"}, "timeout_s": 30})
    job = response.json()
    deadline = await store.redis.zscore("crews:jobs:deadlines", job["id"])
    assert deadline == pytest.approx(job["created_at"] + 30)
