"""The crews image, built with buildah from the local Debian base, runs a role worker against real NATS and Redis.

``images.build`` builds ``localhost/crews`` (skipped when an image of the same inputs exists; from
an empty cache it makes the base with debootstrap and the wheels with pip first), then
``crews role demo/writer`` runs INSIDE the image (``buildah run --isolation chroot --network host``,
as the image's user 10001, root file system not writable by it) against the test's nats-server,
valkey and scripted LLM on the host's loopback. A step dispatched as the coordinator does must
complete with the scripted answer recorded in Redis.

Needs buildah and debootstrap (``make install-image-tools``, which ``make test`` runs) and root.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis
from a2a.types import TaskState
from nats.aio.client import Client as NATS

from images.tools import buildah, must
from inference.testing.script import Script
from inference.testing.server import ScriptedServer
from roles.step.results import StepResult
from tests.roles.helpers import make_work, new_job, run_step, states
from tests.servers import ManagedServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800), pytest.mark.xdist_group("images")]
READY_S = 60.0


@pytest.fixture
def container(image: str) -> Iterator[str]:
    """A working container of the image, removed afterwards."""
    name = must(buildah(["from", "--pull=never", image]))
    try:
        yield name
    finally:
        buildah(["rm", name], check=False)


@pytest.fixture
def llm() -> Iterator[ScriptedServer]:
    with ScriptedServer(
        Script.model_validate({"rules": [{"role": "writer", "replies": ["from the image"]}]})
    ) as server:
        yield server


@pytest.fixture
async def worker(
    container: str,
    nats_server: ManagedServer,
    redis_server: ManagedServer,
    nc: NATS,
    redis_client: aioredis.Redis,
    llm: ScriptedServer,
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``crews role demo/writer`` running in the container, after its ready line (streams cleaned first: ``nc``)."""
    env = {
        "CREWS_NATS_URL": nats_server.url,
        "CREWS_REDIS_URL": redis_server.url,
        "CREWS_LLM_URLS": llm.url,
        "CREWS_LLM_MAX_RETRIES": "0",
    }
    argv = ["buildah", "run", "--isolation", "chroot", "--network", "host", container, "--"]
    argv += ["env", *(f"{k}={v}" for k, v in env.items()), "crews", "role", "demo/writer"]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), READY_S)
        assert line.decode() == "role demo/writer ready\n", line
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def test_a_role_worker_in_the_image_runs_a_step(
    worker: asyncio.subprocess.Process, nc: NATS, redis_client: aioredis.Redis
) -> None:
    work = make_work(new_job(), "in-image")
    events = await run_step(nc.jetstream(), work)
    assert states(events) == [TaskState.TASK_STATE_WORKING, TaskState.TASK_STATE_COMPLETED]
    result = StepResult.model_validate_json(await redis_client.hget(work.keys.results, "in-image"))
    assert result.output == "from the image"


def test_the_image_runs_as_uid_10001_with_only_tmp_writable(container: str) -> None:
    script = (
        "import os, pathlib, tempfile; "
        "print(os.getuid(), os.getgid(), os.environ['HOME'], tempfile.gettempdir()); "
        "print(*(os.access(p, os.W_OK) for p in ('/', '/opt/crews', '/usr', '/etc', '/tmp')))"
    )
    out = must(
        buildah(
            ["run", "--isolation", "chroot", "--network", "host", container, "--", "python3", "-c", script]
        )
    )
    assert out.splitlines() == ["10001 10001 /tmp /tmp", "False False False False True"]
