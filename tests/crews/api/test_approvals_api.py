"""GET /jobs/{id}/approvals and POST /jobs/{id}/approvals/{approval}: a person's side of tool approvals."""

from __future__ import annotations

import httpx
from a2a.types import TaskState
from nats.js import JetStreamContext

from bus.contracts.approvals import arguments_digest, pending_record
from bus.jetstream.events import follow_events
from crews.jobs.store import RedisJobStore, job_keys
from tests.crews.api.conftest import submit


async def waiting_call(store: RedisJobStore, job: str) -> str:
    """A pending call, as a worker records it before pausing its step."""
    record = pending_record(
        step="write", role="writer", tool="publish", call_id="c1", arguments={"to": "web"}
    )
    await store.redis.hset(job_keys(job).approvals, record.id, record.model_dump_json())
    return record.id


async def test_list_then_approve_once(
    client: httpx.AsyncClient, crew: str, store: RedisJobStore, js: JetStreamContext
) -> None:
    job = await submit(client, crew, topic="owls")
    approval = await waiting_call(store, job)
    await store.set_step_state(job, "write", "input-required", seq=1)  # as the step's event set it

    listed = (await client.get(f"/jobs/{job}/approvals")).json()["approvals"]
    assert [(a["id"], a["tool"], a["status"]) for a in listed] == [(approval, "publish", "pending")]

    digest = listed[0]["arguments_sha256"]
    assert digest == arguments_digest("publish", {"to": "web"})
    other = await client.post(
        f"/jobs/{job}/approvals/{approval}", json={"approve": True, "arguments_sha256": "0" * 64}
    )
    assert other.status_code == 409 and "other arguments than the ones you saw" in other.json()["message"]
    body = {"approve": True, "comment": "fine", "arguments_sha256": digest}
    decided = await client.post(f"/jobs/{job}/approvals/{approval}", json=body)
    assert (decided.status_code, decided.json()["status"]) == (200, "approved")
    assert (decided.json()["decided_by"], decided.json()["comment"]) == ("local", "fine")
    assert decided.json()["decided_at"] >= decided.json()["requested_at"]
    assert (await store.get(job)).steps["write"] == "working"  # the decision resumes the step's state
    again = await client.post(f"/jobs/{job}/approvals/{approval}", json={"approve": False})
    assert again.status_code == 409 and "already approved" in again.json()["message"]

    async for item in follow_events(js, job):  # the decision wakes the waiting worker
        update = item.event.status_update
        if update.task_id == f"{job}.write":
            assert update.status.state == TaskState.TASK_STATE_WORKING
            metadata = dict(update.metadata)
            assert (metadata["decision"], metadata["decided_by"], metadata["tool"]) == (
                "approved",
                "local",
                "publish",
            )
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
