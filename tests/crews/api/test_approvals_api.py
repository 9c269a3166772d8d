"""GET /jobs/{id}/approvals and POST /jobs/{id}/approvals/{approval}: a person's side of tool approvals."""

from __future__ import annotations

import json

import httpx
from a2a.types import TaskState
from nats.js import JetStreamContext

from bus.jetstream.events import follow_events
from crews.jobs.store import RedisJobStore, job_keys
from tests.crews.api.conftest import submit


async def waiting_call(store: RedisJobStore, job: str) -> str:
    """A pending call, as a worker records it before pausing its step."""
    record = {
        "step": "write",
        "role": "writer",
        "tool": "publish",
        "arguments": {"to": "web"},
        "status": "pending",
    }
    await store.redis.hset(job_keys(job).approvals, "write:c1", json.dumps(record))
    return "write:c1"


async def test_list_then_approve_once(
    client: httpx.AsyncClient, crew: str, store: RedisJobStore, js: JetStreamContext
) -> None:
    job = await submit(client, crew, topic="owls")
    approval = await waiting_call(store, job)

    listed = (await client.get(f"/jobs/{job}/approvals")).json()["approvals"]
    assert [(a["id"], a["tool"], a["status"]) for a in listed] == [(approval, "publish", "pending")]

    decided = await client.post(f"/jobs/{job}/approvals/{approval}", json={"approve": True})
    assert (decided.status_code, decided.json()["status"]) == (200, "approved")
    again = await client.post(f"/jobs/{job}/approvals/{approval}", json={"approve": False})
    assert again.status_code == 409 and "already approved" in again.json()["message"]

    async for item in follow_events(js, job):  # the decision wakes the waiting worker
        update = item.event.status_update
        if update.task_id == f"{job}.write":
            assert update.status.state == TaskState.TASK_STATE_WORKING
            assert dict(update.metadata)["decision"] == "approved"
            break


async def test_unknown_job_or_approval_is_404_and_a_bad_body_422(
    client: httpx.AsyncClient, crew: str
) -> None:
    job = await submit(client, crew, topic="owls")
    assert (await client.get("/jobs/nope/approvals")).status_code == 404
    missing = await client.post(f"/jobs/{job}/approvals/write:zz", json={"approve": True})
    assert missing.status_code == 404 and f"GET /jobs/{job}/approvals" in missing.json()["message"]
    assert (await client.post(f"/jobs/{job}/approvals/write:zz", json={})).status_code == 422


async def test_an_ended_job_takes_no_decision(
    client: httpx.AsyncClient, crew: str, store: RedisJobStore
) -> None:
    job = await submit(client, crew, topic="owls")
    approval = await waiting_call(store, job)
    await client.post(f"/jobs/{job}/cancel", json={})
    late = await client.post(f"/jobs/{job}/approvals/{approval}", json={"approve": True})
    assert late.status_code == 409 and "can no longer be approved" in late.json()["message"]
