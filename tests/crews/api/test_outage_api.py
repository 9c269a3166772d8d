"""The API while NATS is down: a submission JetStream does not store is a 503 that says so, never a 500."""

from __future__ import annotations

import httpx

from bus.settings import BusSettings
from crews.api.app import create_app
from crews.api.server import ApiServer
from crews.api.settings import ApiSettings
from crews.coordinator.settings import CrewsSettings
from tests.crews.api.conftest import CREW_YAML
from tests.servers import ManagedServer


async def test_submit_while_nats_is_down_is_503(
    own_nats_server: ManagedServer, redis_server: ManagedServer
) -> None:
    api = ApiSettings(api_keys=(), api_sse_ping_s=15.0)
    app = create_app(
        api, CrewsSettings(redis_url=redis_server.url), BusSettings(nats_url=own_nats_server.url)
    )
    async with ApiServer(app) as server, httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        created = await client.post("/crews", content=CREW_YAML, headers={"content-type": "application/yaml"})
        assert created.status_code in (200, 201), created.text  # 200: the session's Redis already had it
        own_nats_server.kill()

        response = await client.post("/crews/digest/jobs", json={"inputs": {"topic": "bees"}})

        assert response.status_code == 503, response.text
        body = response.json()
        assert body["error"] == "nats_unavailable"
        assert body["message"].startswith("cannot reach NATS (") and body["message"].endswith(
            "try again shortly"
        )
