"""Health, readiness, metrics, API keys, body size limits, unknown routes and the OpenAPI document."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator

import httpx
from nats.js import JetStreamContext
from prometheus_client.parser import text_string_to_metric_families

from bus import subjects
from bus.jetstream.streams import ensure_role_consumer
from bus.settings import BusSettings
from crews.jobs.store import RedisJobStore, job_keys
from tests.crews.api.conftest import CREW_YAML, StartApi, submit

YAML = {"content-type": "application/yaml"}


def closed_port_url() -> str:
    """A Redis URL where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "checks": {"nats": "ok", "redis": "ok"}}


async def test_redis_down_is_503_not_500(start_api: StartApi) -> None:
    async with start_api(redis_url=closed_port_url()) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["nats"] == "ok"
        assert ready.json()["checks"]["redis"].startswith("cannot reach Redis")

        crews = await client.get("/crews")
        assert crews.status_code == 503
        assert crews.json()["error"] == "redis_unavailable"
        assert "try again shortly" in crews.json()["message"]


async def test_api_keys(start_api: StartApi) -> None:
    async with start_api(api_keys=("key-one", "key-two")) as client:
        for path in ("/crews", "/jobs", "/jobs/x", "/jobs/x/events", "/metrics"):
            response = await client.get(path)
            assert response.status_code == 401, path
            assert response.headers["www-authenticate"] == "Bearer"
            assert "Authorization: Bearer <key>" in response.json()["message"]

        for header in ("Bearer wrong", "Basic a2V5LW9uZTo=", "Bearer key-one2"):
            response = await client.get("/crews", headers={"Authorization": header})
            assert response.status_code == 401, header

        posted = await client.post(
            "/crews", content=CREW_YAML, headers={**YAML, "Authorization": "Bearer key-two"}
        )
        assert posted.status_code == 201
        authorized = await client.get("/crews", headers={"Authorization": "Bearer key-one"})
        assert [c["name"] for c in authorized.json()["crews"]] == ["digest"]

        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 200


async def test_body_over_the_limit_is_413(start_api: StartApi) -> None:
    async with start_api(api_max_body_bytes=4096) as client:
        assert (await client.post("/crews", content=CREW_YAML, headers=YAML)).status_code == 201

        padded = CREW_YAML + "#" * 5000 + "\n"
        declared = await client.post("/crews", content=padded, headers=YAML)
        assert declared.status_code == 413
        assert declared.json() == {
            "error": "body_too_large",
            "message": "the request body is over the limit of 4 KiB (CREWS_API_MAX_BODY_BYTES): send a smaller one",
            "issues": [],
        }

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
            for _ in range(10):
                yield b"#" * 1000

        chunked = await client.post("/crews/digest/jobs", content=chunks(), headers=YAML)
        assert chunked.status_code == 413


async def test_metrics(
    client: httpx.AsyncClient, crew: str, js: JetStreamContext, store: RedisJobStore
) -> None:
    first, second = await submit(client), await submit(client)
    await client.post(f"/jobs/{second}/cancel", json={})
    await store.redis.hset(
        job_keys(first).usage,
        mapping={"writer:input_tokens": 100, "writer:output_tokens": 20, "writer:calls": 2},
    )
    for step, seconds in (("research", 0.3), ("write", 4.0)):  # as a worker records them
        result = {"output": "x", "role": "writer", "worker": "w", "duration_s": seconds}
        await store.redis.hset(job_keys(first).results, step, json.dumps(result))
    await ensure_role_consumer(js, crew, "researcher", BusSettings())
    for _ in range(2):
        await js.publish(subjects.task_subject(crew, "researcher"), b"{}")
    await js.publish(subjects.task_subject(crew, "writer"), b"{}")  # no consumer yet
    assert (await client.get("/jobs/nope")).status_code == 404

    response = await client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    assert samples[("crews_jobs", (("status", "submitted"),))] == 1
    assert samples[("crews_jobs", (("status", "canceled"),))] == 1
    assert samples[("crews_queue_depth", (("crew", "digest"), ("role", "researcher")))] == 2
    assert samples[("crews_queue_depth", (("crew", "digest"), ("role", "writer")))] == 1
    assert samples[("crews_tokens", (("crew", "digest"), ("kind", "input"), ("role", "writer")))] == 100
    assert samples[("crews_tokens", (("crew", "digest"), ("kind", "output"), ("role", "writer")))] == 20
    assert samples[("crews_llm_calls", (("crew", "digest"), ("role", "writer")))] == 2
    step = (("crew", "digest"), ("role", "writer"))
    assert samples[("crews_step_duration_seconds_count", step)] == 2
    assert samples[("crews_step_duration_seconds_sum", step)] == 4.3
    assert samples[("crews_step_duration_seconds_bucket", (*step[:1], ("le", "0.5"), step[1]))] == 1
    labels = (("method", "GET"), ("route", "/jobs/{job}"), ("status", "404"))
    assert samples[("crews_api_requests_total", labels)] == 1


async def test_unknown_route_and_method_get_json_errors(client: httpx.AsyncClient) -> None:
    missing = await client.get("/nowhere")
    assert missing.status_code == 404
    assert missing.json() == {"error": "not_found", "message": "no such endpoint: see /docs", "issues": []}
    wrong = await client.put("/jobs")
    assert wrong.status_code == 405
    assert wrong.json()["error"] == "method_not_allowed"


async def test_openapi_has_examples_and_the_bearer_scheme(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    assert doc["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key from CREWS_API_KEYS, as `Authorization: Bearer <key>` (off when none is set).",
    }
    schemas = doc["components"]["schemas"]
    assert schemas["JobView"]["examples"][0]["crew"] == "research"
    assert schemas["ErrorBody"]["examples"][0]["error"] == "crew_file_invalid"
    register = doc["paths"]["/crews"]["post"]
    assert "application/yaml" in register["requestBody"]["content"]
    assert {"413", "415", "422"} <= set(register["responses"])
    events = doc["paths"]["/jobs/{job}/events"]["get"]
    assert "text/event-stream" in events["responses"]["200"]["content"]
    assert (await client.get("/docs")).status_code == 200


async def test_roles_show_queue_depth_and_the_local_stacks_workers(
    client: httpx.AsyncClient, crew: str, store: RedisJobStore
) -> None:
    await submit(client, crew, topic="owls")
    await store.set_worker_counts({f"{crew}/writer": 2})

    roles = {(r["crew"], r["role"]): r for r in (await client.get("/roles")).json()["roles"]}

    assert roles[crew, "writer"]["workers"] == 2
    assert {r["queue_depth"] for r in roles.values()} == {0}  # no coordinator: nothing dispatched yet
    assert all(r["workers"] is None for key, r in roles.items() if key != (crew, "writer"))
    families = {f.name: f for f in text_string_to_metric_families((await client.get("/metrics")).text)}
    [sample] = families["crews_workers"].samples
    assert (sample.labels, sample.value) == ({"crew": crew, "role": "writer"}, 2.0)
