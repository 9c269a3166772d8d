"""The harness itself: servers are real, and survive SIGKILL + restart on the same store."""

from __future__ import annotations

import socket
from pathlib import Path

import nats
import pytest
import redis.asyncio as aioredis

from crews.errors import LocalStackError
from crews.local.servers import LOWEST_PICKED_PORT, free_port, redis_server
from tests.child_env import child_env
from tests.servers import ManagedServer


async def test_redis_keeps_data_across_kill_and_restart(own_redis_server: ManagedServer) -> None:
    client = aioredis.Redis.from_url(own_redis_server.url)
    await client.set("k", "v")
    await client.aclose()
    own_redis_server.kill()
    own_redis_server.restart()
    client = aioredis.Redis.from_url(own_redis_server.url)
    assert await client.get("k") == b"v"
    await client.aclose()


async def test_nats_jetstream_is_enabled(nats_server: ManagedServer) -> None:
    nc = await nats.connect(nats_server.url)
    info = await nc.jetstream().account_info()
    assert info.limits is not None
    await nc.close()


def test_picked_ports_are_free_below_the_ephemeral_range_and_not_picked_twice() -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert all(LOWEST_PICKED_PORT <= port < low for port in ports)
    with socket.socket() as held:
        held.bind(("127.0.0.1", ports[-1] + 1))  # the next in the walk: taken, so it is skipped
        held.listen()
        assert free_port() != ports[-1] + 1


def test_a_server_whose_port_is_taken_fails_to_start_instead_of_seeming_ready(tmp_path: Path) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        server = redis_server(tmp_path, held.getsockname()[1])
        with pytest.raises(LocalStackError, match="did not become ready"):
            server.start()
    assert not server.running


def test_started_processes_keep_the_cache_dir_and_lose_the_other_crews_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """CI points every cache at an empty folder the installs filled: a child that lost it installs again."""
    monkeypatch.setenv("CREWS_LOCAL_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CREWS_NATS_URL", "nats://127.0.0.1:1")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "test")
    assert child_env()["CREWS_LOCAL_CACHE_DIR"] == str(tmp_path)
    assert "CREWS_NATS_URL" not in child_env()
    assert child_env()["OTEL_SERVICE_NAME"] == "test"
    assert "OTEL_SERVICE_NAME" not in child_env("CREWS_", "OTEL_")
    assert child_env("CREWS_", "OTEL_")["CREWS_LOCAL_CACHE_DIR"] == str(tmp_path)
