"""The security suite: each test tries one threat against the real stack (API over HTTP, NATS, Redis, processes).

The API here has keys of two tenants (alice, bob), an admin and a read-only key;
``api`` yields a client per key, all against one server.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from tests.crews.api.conftest import CREW_YAML, StartApi, coordinator, js, start_api, store  # noqa: F401 - fixtures

ALICE_KEY = "alice-key-0123456789"
BOB_KEY = "bob-key-0123456789ab"
ADMIN_KEY = "admin-key-0123456789"
READER_KEY = "reader-key-012345678"
TENANT = ["crews:write", "jobs:submit", "jobs:read", "approvals:decide"]
KEYS = json.dumps(
    [
        {"key": ALICE_KEY, "principal": "alice", "scopes": TENANT},
        {"key": BOB_KEY, "principal": "bob", "scopes": TENANT},
        {"key": ADMIN_KEY, "principal": "ops", "scopes": ["admin"]},
        {"key": READER_KEY, "principal": "alice-dashboard", "scopes": ["jobs:read"]},
    ]
)
YAML = {"content-type": "application/yaml"}


@dataclass
class Tenants:
    alice: httpx.AsyncClient
    bob: httpx.AsyncClient
    admin: httpx.AsyncClient
    reader: httpx.AsyncClient
    anonymous: httpx.AsyncClient
    base_url: str


@pytest.fixture
async def tenants(start_api: StartApi) -> AsyncIterator[Tenants]:  # noqa: F811 - the imported fixture
    """One API with four keys; a client per key (and one without)."""
    async with start_api(api_keys=KEYS) as http:
        base = str(http.base_url)

        def client(key: str | None) -> httpx.AsyncClient:
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            return httpx.AsyncClient(base_url=base, headers=headers, timeout=30)

        clients = [client(k) for k in (ALICE_KEY, BOB_KEY, ADMIN_KEY, READER_KEY, None)]
        try:
            yield Tenants(*clients, base_url=base.rstrip("/"))
        finally:
            for one in clients:
                await one.aclose()


async def register(client: httpx.AsyncClient, text: str = CREW_YAML) -> httpx.Response:
    return await client.post("/crews", content=text, headers=YAML)


async def submit(client: httpx.AsyncClient, crew: str = "digest", key: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return await client.post(f"/crews/{crew}/jobs", json={"inputs": {"topic": "bees"}}, headers=headers)
