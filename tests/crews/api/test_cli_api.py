"""``crews api``: the installed command serves the API, prints its ready line, and stops on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import httpx

from tests.child_env import child_env
from tests.servers import ManagedServer

CREWS = str(Path(sys.executable).with_name("crews"))


async def test_crews_api_command(nats_server: ManagedServer, redis_server: ManagedServer) -> None:
    env = child_env()
    env.update(
        CREWS_NATS_URL=nats_server.url,
        CREWS_REDIS_URL=redis_server.url,
        CREWS_API_PORT="0",
        CREWS_API_KEYS="secret",
    )
    proc = await asyncio.create_subprocess_exec(
        CREWS, "api", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            line = (await proc.stdout.readline()).decode().strip()
        assert line.startswith("api ready on http://127.0.0.1:"), line
        url = line.removeprefix("api ready on ")
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/readyz")).json()["ready"] is True
            assert (await client.get("/crews")).status_code == 401
            authorized = await client.get("/crews", headers={"Authorization": "Bearer secret"})
            assert authorized.status_code == 200
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
