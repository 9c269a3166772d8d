"""Push notifications to a real webhook receiver (an HTTP server in the test, on loopback the operator allowed)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from a2a.types import (
    AuthenticationInfo,
    DeleteTaskPushNotificationConfigRequest,
    GetTaskPushNotificationConfigRequest,
    ListTaskPushNotificationConfigsRequest,
    TaskPushNotificationConfig,
)
from a2a.utils.errors import InvalidParamsError
from cryptography.fernet import Fernet
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from pydantic import SecretStr

from bus.subjects import a2a_subject
from crews.a2a.settings import A2ASettings
from crews.coordinator.coordinator import Coordinator
from crews.jobs.store import RedisJobStore
from crews.local.servers import ServerProcess, free_port
from tests.child_env import child_env
from tests.crews.api.a2a.conftest import AUTH, KEY, WAIT_S, MakeClient, collect, take_step
from tests.crews.api.a2a.test_crew_agent import ask, run_digest
from tests.crews.api.a2a.webhook import SECRET, TOKEN, Receiver, assert_signed, config
from tests.crews.api.conftest import StartApi
from tests.servers import ManagedServer

PUSH_KEY = Fernet.generate_key().decode()
CREWS = str(Path(sys.executable).with_name("crews"))


@pytest.fixture
def a2a_settings() -> A2ASettings:
    return A2ASettings(
        push_allow_private=True,
        push_backoff_s=0.05,
        push_backoff_max_s=0.2,
        push_secret_key=SecretStr(PUSH_KEY),
    )


@pytest.mark.parametrize("binding", ["JSONRPC", "HTTP+JSON"])
async def test_every_update_reaches_the_webhook_signed_in_order_after_a_retry(
    make_client: MakeClient,
    receiver: Receiver,
    digest: str,
    nc: NATS,
    js: JetStreamContext,
    store: RedisJobStore,
    coordinator: Coordinator,
    binding: str,
) -> None:
    receiver.fail_first = 1
    client = await make_client(binding=binding, streaming=False)
    request = ask("bees")
    request.configuration.return_immediately = True
    [started] = await collect(client.send_message(request))
    job = started.task.id

    created = await client.create_task_push_notification_config(config(receiver, job))
    assert (created.id, created.url, created.token, created.authentication.credentials) == (
        "hook-1",
        receiver.url,
        "",
        "",
    )
    got = await client.get_task_push_notification_config(
        GetTaskPushNotificationConfigRequest(task_id=job, id="hook-1")
    )
    assert (got.token, got.authentication.credentials, got.authentication.scheme) == ("", "", "HMAC-SHA256")
    stored = await store.redis.hget(f"crews:{{job:{job}}}:a2a:push", "hook-1")
    assert stored and SECRET not in stored and TOKEN not in stored  # sealed at rest
    body = json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "ListTaskPushNotificationConfigs", "params": {"taskId": job}}
    )
    listed_on_nats = json.loads(
        (
            await nc.request(
                a2a_subject("digest"),
                body.encode(),
                timeout=WAIT_S,
                headers={"Authorization": f"Bearer {KEY}"},
            )
        ).data
    )
    assert [c["id"] for c in listed_on_nats["result"]["configs"]] == ["hook-1"]
    assert SECRET not in body_of(listed_on_nats) and TOKEN not in body_of(listed_on_nats)

    await run_digest(js, store)
    await receiver.until("TASK_STATE_COMPLETED")

    assert len(receiver.seen) > len(receiver.accepted())  # the first delivery failed and came again
    assert receiver.seen[0][1] == receiver.seen[1][1]
    states = receiver.states()
    assert states[-1] == "TASK_STATE_COMPLETED" and "TASK_STATE_WORKING" in states
    assert receiver.artifacts() == ["research", "write", "output"]
    assert {
        d.get("statusUpdate", d.get("artifactUpdate", {})).get("taskId") for d in receiver.accepted()
    } == {job}
    assert_signed(receiver)
    deliveries = [headers["x-crews-delivery"] for headers, _ in receiver.seen[1:]]
    assert len(set(deliveries)) == len(deliveries)  # each update once

    await client.delete_task_push_notification_config(
        DeleteTaskPushNotificationConfigRequest(task_id=job, id="hook-1")
    )
    left = await client.list_task_push_notification_configs(
        ListTaskPushNotificationConfigsRequest(task_id=job)
    )
    assert list(left.configs) == []


def body_of(answer: dict[str, Any]) -> str:
    return json.dumps(answer)


@pytest.mark.parametrize(
    "secrets",
    [
        {"token": TOKEN},
        {"authentication": AuthenticationInfo(scheme="Bearer", credentials=SECRET)},
        {"authentication": AuthenticationInfo(scheme="HMAC-SHA256", credentials=SECRET)},
    ],
)
async def test_without_the_operators_key_webhook_secrets_are_refused_and_plain_webhooks_work(
    start_api: StartApi,
    digest: str,
    js: JetStreamContext,
    store: RedisJobStore,
    http: httpx.AsyncClient,
    receiver: Receiver,
    secrets: dict[str, Any],
) -> None:
    from a2a.client import ClientConfig, ClientFactory

    from crews.jobs.control import submit_job

    job = (await submit_job(js, store, "digest", {"topic": "bees"})).id
    async with start_api(api_keys=(KEY,), a2a=A2ASettings(push_allow_private=True)) as api:
        client = await ClientFactory(ClientConfig(httpx_client=http)).create_from_url(
            str(api.base_url).rstrip("/") + "/a2a/digest"
        )
        with pytest.raises(InvalidParamsError, match="CREWS_A2A_PUSH_SECRET_KEY"):
            await client.create_task_push_notification_config(
                TaskPushNotificationConfig(task_id=job, id="secret", url=receiver.url, **secrets)
            )
        plain = TaskPushNotificationConfig(
            task_id=job, id="plain", url=receiver.url, authentication=AuthenticationInfo(scheme="Bearer")
        )
        await client.create_task_push_notification_config(plain)
        listed = await client.list_task_push_notification_configs(
            ListTaskPushNotificationConfigsRequest(task_id=job)
        )
    assert [c.id for c in listed.configs] == ["plain"]
    assert await store.redis.hkeys(f"crews:{{job:{job}}}:a2a:push") == ["plain"]


def test_a_rotated_key_opens_what_the_old_one_sealed_and_a_dropped_one_does_not() -> None:
    from crews.a2a.push.sealing import PushSealer, PushSecrets, SealedUnreadable

    secrets = PushSecrets(token=TOKEN, credentials=SECRET)
    sealed = PushSealer(SecretStr(PUSH_KEY)).seal(secrets)
    new = Fernet.generate_key().decode()
    assert PushSealer(SecretStr(f"{new},{PUSH_KEY}")).open(sealed) == secrets
    with pytest.raises(SealedUnreadable, match="CREWS_A2A_PUSH_SECRET_KEY"):
        PushSealer(SecretStr(new)).open(sealed)


def test_a_key_that_is_no_fernet_key_stops_the_settings_naming_the_setting() -> None:
    with pytest.raises(ValueError, match="CREWS_A2A_PUSH_SECRET_KEY: key 2 is not a Fernet key"):
        A2ASettings(push_secret_key=SecretStr(f"{PUSH_KEY},not-a-key"))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.7/hook",
        "file:///etc/passwd",
    ],
)
async def test_webhooks_on_private_addresses_are_refused_unless_the_operator_allows_them(
    start_api: StartApi,
    digest: str,
    js: JetStreamContext,
    store: RedisJobStore,
    http: httpx.AsyncClient,
    url: str,
) -> None:
    from a2a.client import ClientConfig, ClientFactory

    from crews.jobs.control import submit_job

    job = (await submit_job(js, store, "digest", {"topic": "bees"})).id
    async with start_api(api_keys=(KEY,), a2a=A2ASettings(push_allow_private=False)) as api:
        client = await ClientFactory(ClientConfig(httpx_client=http)).create_from_url(
            str(api.base_url).rstrip("/") + "/a2a/digest"
        )
        with pytest.raises(InvalidParamsError, match=r"private|http"):
            await client.create_task_push_notification_config(
                TaskPushNotificationConfig(task_id=job, url=url)
            )


@pytest.fixture
def api_process(
    nats_server: ManagedServer, redis_server: ManagedServer, digest: str, coordinator: Coordinator
) -> Iterator[ServerProcess]:
    """``crews api`` as a process that may be killed and started again on the same port."""
    port = free_port()
    env = child_env()
    env.update(
        CREWS_NATS_URL=nats_server.url,
        CREWS_REDIS_URL=redis_server.url,
        CREWS_API_KEYS=KEY,
        CREWS_API_PORT=str(port),
        CREWS_A2A_PUSH_ALLOW_PRIVATE="true",
        CREWS_A2A_PUSH_BACKOFF_S="0.05",
        CREWS_A2A_PUSH_BACKOFF_MAX_S="0.2",
        CREWS_A2A_PUSH_SECRET_KEY=PUSH_KEY,
        PYTHONUNBUFFERED="1",
    )
    process = ServerProcess("api", [CREWS, "api"], "api ready on", port, env=env)
    process.start()
    try:
        yield process
    finally:
        process.stop()
        print(process.log_tail)


async def job_with_webhook(api_process: ServerProcess, receiver: Receiver) -> str:
    """A digest job sent to the API process over A2A, with ``receiver`` as its push webhook."""
    from a2a.client import ClientConfig, ClientFactory

    url = f"http://127.0.0.1:{api_process.port}/a2a/digest"
    async with httpx.AsyncClient(headers=AUTH, timeout=WAIT_S) as http:
        client = await ClientFactory(ClientConfig(httpx_client=http, streaming=False)).create_from_url(url)
        request = ask("bees")
        request.configuration.return_immediately = True
        [started] = await collect(client.send_message(request))
        await client.create_task_push_notification_config(config(receiver, started.task.id))
    return str(started.task.id)


async def test_deliveries_survive_a_restart_of_the_process_that_delivers(
    api_process: ServerProcess, receiver: Receiver, digest: str, js: JetStreamContext, store: RedisJobStore
) -> None:
    receiver.fail_first = 10**6  # the webhook is down at first
    await job_with_webhook(api_process, receiver)
    assert await take_step(js, store, "digest", "researcher", "- bees dance") == "research"
    while not receiver.seen:  # a delivery was tried (and refused)
        receiver.arrived.clear()
        await asyncio.wait_for(receiver.arrived.wait(), WAIT_S)

    api_process.kill()  # SIGKILL: what it had not delivered is in Redis and JetStream
    assert await take_step(js, store, "digest", "writer", "Bees dance to talk.") == "write"
    tried = len(receiver.seen)
    receiver.fail_first = tried  # the webhook is back
    api_process.start()
    await receiver.until("TASK_STATE_COMPLETED")

    # every update, in order, none lost in the restart
    assert receiver.artifacts() == ["research", "write", "output"]
    assert receiver.states()[-1] == "TASK_STATE_COMPLETED"
    assert_signed(receiver)


async def test_deliveries_go_on_after_redis_comes_back(
    api_process: ServerProcess,
    redis_server: ManagedServer,
    receiver: Receiver,
    digest: str,
    js: JetStreamContext,
    store: RedisJobStore,
) -> None:
    """A Redis outage ended the delivery loop (and the ingest with it) until the API was restarted."""
    await job_with_webhook(api_process, receiver)
    assert await take_step(js, store, "digest", "researcher", "- bees dance") == "research"

    mark = api_process.mark()
    redis_server.kill()
    await asyncio.to_thread(api_process.wait_for_line, "push: delivery round failed", WAIT_S, after=mark)
    await asyncio.to_thread(redis_server.restart)
    assert await take_step(js, store, "digest", "writer", "Bees dance to talk.") == "write"
    await receiver.until("TASK_STATE_COMPLETED")

    assert receiver.artifacts() == ["research", "write", "output"]  # none lost, none twice, in order
    assert_signed(receiver)
