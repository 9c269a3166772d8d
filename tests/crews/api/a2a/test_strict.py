"""What a crew's A2A endpoint refuses, on JSON-RPC, REST and NATS alike; the origin's card; 0.3 method names."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from bus.subjects import a2a_subject
from crews.coordinator.coordinator import Coordinator
from crews.jobs.control import cancel_job, submit_job
from crews.jobs.store import RedisJobStore
from tests.crews.api.a2a.conftest import AUTH, KEY, WAIT_S

EMPTY_MESSAGES: dict[str, dict[str, Any]] = {
    "no parts": {"messageId": "m-empty", "role": "ROLE_USER", "parts": []},
    "no role": {"messageId": "m-norole", "parts": [{"text": "bees"}]},
    "an empty part": {"messageId": "m-emptypart", "role": "ROLE_USER", "parts": [{}]},
}


async def jsonrpc(api_url: str, method: str, params: dict[str, Any], **headers: str) -> dict[str, Any]:
    async with httpx.AsyncClient(headers={**AUTH, **headers}, timeout=WAIT_S) as http:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        answer: dict[str, Any] = (await http.post(f"{api_url}/a2a/digest", json=body)).json()
        return answer


async def over_nats(nc: NATS, method: str, params: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    reply = await nc.request(
        a2a_subject("digest"), body, timeout=WAIT_S, headers={"Authorization": f"Bearer {KEY}"}
    )
    answer: dict[str, Any] = json.loads(reply.data)
    return answer


async def test_list_tasks_with_an_unknown_status_is_invalid_params_on_every_binding(
    api_url: str, digest: str, nc: NATS, js: JetStreamContext, store: RedisJobStore
) -> None:
    await submit_job(js, store, "digest", {"topic": "bees"})
    rpc = await jsonrpc(api_url, "ListTasks", {"status": "TASK_STATE_DONE"})
    nats_answer = await over_nats(nc, "ListTasks", {"status": "TASK_STATE_DONE"})
    async with httpx.AsyncClient(headers=AUTH, timeout=WAIT_S) as http:
        rest = await http.get(f"{api_url}/a2a/digest/tasks", params={"status": "TASK_STATE_DONE"})
        known = await http.get(f"{api_url}/a2a/digest/tasks", params={"status": "TASK_STATE_SUBMITTED"})

    assert rpc["error"]["code"] == -32602 and "TASK_STATE_DONE" in rpc["error"]["message"]
    assert nats_answer["error"]["code"] == -32602
    assert rest.status_code == 400 and rest.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert known.status_code == 200 and len(known.json()["tasks"]) == 1


@pytest.mark.parametrize("message", EMPTY_MESSAGES.values(), ids=EMPTY_MESSAGES.keys())
async def test_a_message_without_parts_or_role_starts_no_job(
    api_url: str, digest: str, nc: NATS, store: RedisJobStore, message: dict[str, Any]
) -> None:
    rpc = await jsonrpc(api_url, "SendMessage", {"message": message})
    nats_answer = await over_nats(nc, "SendMessage", {"message": message})
    async with httpx.AsyncClient(headers=AUTH, timeout=WAIT_S) as http:
        rest = await http.post(f"{api_url}/a2a/digest/message:send", json={"message": message})

    assert rpc["error"]["code"] == -32602, rpc
    assert nats_answer["error"]["code"] == -32602, nats_answer
    assert rest.status_code == 400, rest.text
    assert await store.list_jobs() == []


async def test_rest_cancel_of_an_ended_task_is_409(
    api_url: str, digest: str, js: JetStreamContext, store: RedisJobStore
) -> None:
    job = (await submit_job(js, store, "digest", {"topic": "bees"})).id
    await cancel_job(js, store, job)
    async with httpx.AsyncClient(headers=AUTH, timeout=WAIT_S) as http:
        rest = await http.post(f"{api_url}/a2a/digest/tasks/{job}:cancel")
    rpc = await jsonrpc(api_url, "CancelTask", {"id": job})

    assert rest.status_code == 409, rest.text
    assert rest.json()["error"]["details"][0]["reason"] == "TASK_NOT_CANCELABLE"
    assert rpc["error"]["code"] == -32002


async def test_the_origin_serves_the_default_crews_card(api_url: str, digest: str) -> None:
    async with httpx.AsyncClient(timeout=WAIT_S) as anonymous:
        origin = (await anonymous.get(f"{api_url}/.well-known/agent-card.json")).json()
        crew = (await anonymous.get(f"{api_url}/a2a/digest/.well-known/agent-card.json")).json()

    assert origin == crew
    assert origin["supportedInterfaces"][0]["url"] == f"{api_url}/a2a/digest"
    assert origin["capabilities"] == {"streaming": True, "pushNotifications": True}


async def test_0_3_method_names_without_a_version_header_are_served_as_0_3(
    api_url: str, digest: str, store: RedisJobStore, coordinator: Coordinator
) -> None:
    message = {
        "kind": "message",
        "messageId": "m-03",
        "role": "user",
        "parts": [{"kind": "text", "text": "bees"}],
    }
    sent = await jsonrpc(api_url, "message/send", {"message": message, "configuration": {"blocking": False}})
    task = sent["result"]
    got = await jsonrpc(api_url, "tasks/get", {"id": task["id"]})
    missing = await jsonrpc(api_url, "tasks/get", {"id": "no-such-task"})

    assert task["kind"] == "task" and task["status"]["state"] in ("submitted", "working")
    assert got["result"]["id"] == task["id"] and got["result"]["kind"] == "task"
    assert missing["error"]["code"] == -32001
    assert (await store.get(task["id"])).inputs == {"topic": "bees"}
