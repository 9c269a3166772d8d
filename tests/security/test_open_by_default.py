"""Closed by default: no keys means loopback only; Host, Origin and body type are checked (CSRF, DNS rebinding).

The review reproduced: with no keys the API bound any address; a POST with no
body and no content type started a job; a ``text/plain`` JSON-RPC SendMessage
with a foreign Origin created a task; a wrong Host was served.
"""

from __future__ import annotations

import json

import pytest
from fastapi import FastAPI

from crews.api.server import ApiServer, ApiServerError, check_exposure
from crews.jobs.store import RedisJobStore
from tests.crews.api.conftest import CREW_YAML, StartApi

SEND = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "SendMessage",
    "params": {
        "message": {"messageId": "csrf-1", "role": "ROLE_USER", "parts": [{"text": "bees"}]},
        "configuration": {"returnImmediately": True},
    },
}


async def test_an_api_without_keys_will_not_serve_beyond_loopback(start_api: StartApi) -> None:
    async with start_api() as client:  # no keys, on 127.0.0.1: served
        assert (await client.get("/healthz")).status_code == 200
    open_app = FastAPI()
    open_app.state.open_access = True
    with pytest.raises(ApiServerError, match="without API keys"):
        check_exposure(open_app, "0.0.0.0")
    with pytest.raises(ApiServerError, match="CREWS_API_KEYS"):
        await ApiServer(open_app, host="0.0.0.0").start()
    check_exposure(open_app, "::1")  # loopback: allowed
    open_app.state.open_access = False  # with keys: anywhere
    check_exposure(open_app, "0.0.0.0")


async def test_cross_site_posts_are_refused(start_api: StartApi, store: RedisJobStore) -> None:
    async with start_api() as client:
        registered = await client.post(
            "/crews", content=CREW_YAML, headers={"content-type": "application/yaml"}
        )
        assert registered.status_code == 201

        bare = await client.post("/crews/digest/jobs")  # what a no-cors fetch() from any page sends
        assert bare.status_code == 415 and "application/json" in bare.json()["message"]
        form = await client.post(
            "/crews/digest/jobs", content=b"inputs=x", headers={"content-type": "text/plain"}
        )
        assert form.status_code == 415
        csrf = await client.post(
            "/a2a/digest",
            content=json.dumps(SEND),
            headers={"content-type": "text/plain", "origin": "https://evil.example"},
        )
        assert csrf.status_code in (403, 415)
        as_json = await client.post("/a2a/digest", json=SEND, headers={"origin": "https://evil.example"})
        assert as_json.status_code == 403 and "evil.example" in as_json.json()["message"]
        assert await store.list_jobs() == []  # nothing started

        ok = await client.post("/a2a/digest", json=SEND, headers={"A2A-Version": "1.0"})
        assert ok.status_code == 200 and "result" in ok.json()


async def test_a_host_it_does_not_serve_is_refused(start_api: StartApi) -> None:
    async with start_api() as client:
        rebound = await client.get("/jobs", headers={"host": "attacker.example:8080"})
        assert rebound.status_code == 421 and "attacker.example" in rebound.json()["message"]
        assert (await client.get("/healthz", headers={"host": "10.1.2.3:8080"})).status_code == 200  # probes
        assert (await client.get("/jobs", headers={"host": "localhost:8080"})).status_code == 200
    async with start_api(api_allowed_hosts="crews.example.com") as client:
        assert (await client.get("/jobs", headers={"host": "crews.example.com"})).status_code == 200
        assert (await client.get("/jobs")).status_code == 421  # 127.0.0.1 is not among the names


def test_plain_keys_are_admin_keys_and_json_keys_name_principals() -> None:
    from crews.api.settings import ApiSettings

    plain = ApiSettings(api_keys="k1,k2")
    assert [(k.principal, sorted(k.scopes)) for k in plain.api_keys] == [("admin", ["admin"])] * 2
    named = ApiSettings(
        api_keys=json.dumps([{"key": "x" * 20, "principal": "alice", "scopes": ["jobs:read"]}])
    )
    assert named.api_keys[0].who.can("jobs:read") and not named.api_keys[0].who.can("jobs:submit")
    assert "x" * 20 not in repr(named)
    with pytest.raises(ValueError, match="scopes"):
        ApiSettings(api_keys=json.dumps([{"key": "x" * 20, "principal": "a", "scopes": ["everything"]}]))
    with pytest.raises(ValueError, match="twice"):
        ApiSettings(api_keys="same,same")
