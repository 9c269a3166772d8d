"""The chart's Redis ACL on a real Redis-compatible server: each user can do its job and nothing else.

The ACL file and every user's URL come from the rendered Secrets (so the password hashes of the
file and the passwords in each component's Secret must agree), and the checks run the store code
the processes run: the API's and the coordinator's job store, the approvals, a worker's results,
memory, usage, checkpoints and cancel watch, a role agent's A2A tasks.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis
from a2a.server.context import ServerCallContext
from a2a.types import Task, TaskState, TaskStatus
from nats.aio.client import Client as NATS
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError

from bus.contracts.approvals import ApprovalRecord, pending_record
from bus.contracts.result import StepResult
from bus.jetstream.streams import ensure_streams
from bus.redis_client import redis_client
from bus.settings import BusSettings, RedisSettings
from crews.jobs.approvals import decide, list_approvals
from crews.jobs.store import RedisJobStore, job_keys
from crews.local.servers import ServerProcess, redis_server
from crews.plan.planner import plan
from crews.spec.load import load_crew_text
from inference.results import Usage
from roles.a2a.agent import job_of, stop_call
from roles.a2a.tasks import RedisTaskStore
from roles.step.checkpoint import StepCheckpoint
from roles.step.memory import SharedMemory
from roles.step.results import ResultStore
from roles.step.start import read_start
from roles.step.usage import FirstCall, RedisUsage
from tests.chart.render import RELEASE, Obj, example_values, of_kind, render
from tests.roles.helpers import make_work

ROLE, OTHER = "role.research.writer", "role.research.reviewer"
CREW = """
name: research
roles: {writer: {role: W, goal: G}}
tasks: {a: {description: D, expected_output: E, agent: writer}}
"""


class Users:
    """Each Redis user of the release: its URL on the test server."""

    def __init__(self, objects: list[Obj], port: int) -> None:
        self.urls: dict[str, str] = {}
        for secret in of_kind(objects, "Secret"):
            user = secret["metadata"].get("annotations", {}).get("crews.dev/redis-user")
            if user:
                parts = urlsplit(secret["stringData"]["url"])
                self.urls[user] = f"redis://{parts.username}:{parts.password}@127.0.0.1:{port}/0"
        self.plain = f"redis://127.0.0.1:{port}/0"


@pytest.fixture(scope="module")
def chart_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Users]:
    objects = render({**example_values(), "redis": {"auth": {"seed": "test-seed"}}})
    [acl] = [o for o in of_kind(objects, "Secret") if "users.acl" in o.get("stringData", {})]
    tmp: Path = tmp_path_factory.mktemp("chart-redis")
    (tmp / "users.acl").write_text(acl["stringData"]["users.acl"])
    server: ServerProcess = redis_server(tmp / "data")
    server.argv += ["--aclfile", str(tmp / "users.acl")]
    server.start()
    try:
        yield Users(objects, server.port)
    finally:
        server.kill()


@pytest.fixture
async def clients(chart_redis: Users) -> AsyncIterator[dict[str, aioredis.Redis]]:
    """A client per user (the processes' own factory), after the admin flushed the database."""
    opened = {user: redis_client(RedisSettings(redis_url=url)) for user, url in chart_redis.urls.items()}
    await opened["admin"].flushall()
    try:
        yield opened
    finally:
        for client in opened.values():
            await client.aclose()


async def _job(api: RedisJobStore, coordinator: RedisJobStore, job: str) -> None:
    """A registered crew and a started job, as the API and the coordinator make them."""
    spec = load_crew_text(CREW, "research.yaml")
    await api.save_crew(spec)
    await api.create(job, "research", {}, deadline_s=60, owner="alice")
    await coordinator.start(job, plan(await coordinator.get_crew("research"), {}), spec, "")


def test_every_component_and_role_has_a_user_in_the_acl_file(chart_redis: Users) -> None:
    objects = render({**example_values(), "redis": {"auth": {"seed": "test-seed"}}})
    [acl] = [o for o in of_kind(objects, "Secret") if "users.acl" in o.get("stringData", {})]
    lines = acl["stringData"]["users.acl"].splitlines()
    names = {line.split()[1] for line in lines if line.startswith("user ")}
    roles = {f"role.{c}.{r}" for c, spec in example_values()["crews"].items() for r in spec["roles"]}
    assert names == {"default", "admin", "api", "coordinator", *roles} == set(chart_redis.urls) | {"default"}
    assert any(line.startswith("user default reset off") for line in lines)
    assert "test-seed" not in acl["stringData"]["users.acl"]  # hashes only, no password
    for user, url in chart_redis.urls.items():
        assert urlsplit(url).password not in acl["stringData"]["users.acl"], user


async def test_without_a_user_nothing_is_served(chart_redis: Users) -> None:
    client = redis_client(RedisSettings(redis_url=chart_redis.plain))
    try:
        with pytest.raises(AuthenticationError):
            await client.get("crews:crew:research")
    finally:
        await client.aclose()


async def test_the_api_registers_crews_submits_cancels_and_decides(
    clients: dict[str, aioredis.Redis], nc: NATS
) -> None:
    js = nc.jetstream()
    await ensure_streams(js, BusSettings())
    api, coordinator = RedisJobStore(clients["api"]), RedisJobStore(clients["coordinator"])
    await _job(api, coordinator, "j1")
    assert await api.claim_crew("research", "alice")
    assert await api.list_crews() == ["research"]
    assert await api.claim_idempotency_key("k", "j1", "alice") == "j1"
    assert await api.running_jobs("alice") == 1

    request = pending_record(step="a", role="writer", tool="send_mail", call_id="c1", arguments={"to": "x"})
    assert await clients[ROLE].hsetnx(job_keys("j1").approvals, request.id, request.model_dump_json())
    decided = await decide(js, api, "j1", request.id, approve=True, comment="fine", decided_by="alice")
    assert decided.status == "approved"
    raw = await clients[ROLE].hget(job_keys("j1").approvals, request.id)  # the worker reads the decision
    assert ApprovalRecord.model_validate_json(raw).decided_by == "alice"

    assert await api.finish("j1", "canceled", reason="by alice")
    assert (await api.get("j1")).status == "canceled"
    assert await api.delete_crew("research")


async def test_the_coordinator_runs_a_job_but_writes_no_crew_and_no_approval(
    clients: dict[str, aioredis.Redis], nc: NATS
) -> None:
    js = nc.jetstream()
    await ensure_streams(js, BusSettings())
    api, coordinator = RedisJobStore(clients["api"]), RedisJobStore(clients["coordinator"])
    await _job(api, coordinator, "j2")
    await coordinator.set_step_state("j2", "a", "dispatched")
    await coordinator.record_attempt("j2", "a", 1)
    await coordinator.set_step_state("j2", "a", "completed", seq=3)
    await ResultStore(clients[ROLE], job_keys("j2").results).record(
        "a", StepResult(output="out", role="writer")
    )
    assert (await coordinator.results("j2"))["a"].output == "out"
    owner = (await coordinator.get("j2")).owner  # as the coordinator's last pass read it: one round trip
    assert await coordinator.finish("j2", "completed", output="out", owner=owner)
    assert 0 < await clients["admin"].ttl(job_keys("j2").results) <= coordinator.job_ttl_s  # EXPIRE allowed
    assert await coordinator.overdue(time.time() + 1) == ["j2"]
    await coordinator.forget_deadline("j2")
    assert [r.status for r in await coordinator.list_jobs()] == ["completed"]

    with pytest.raises(NoPermissionError):
        await coordinator.save_crew(load_crew_text(CREW, "research.yaml"))
    request = pending_record(step="a", role="writer", tool="t", call_id="c1", arguments={})
    with pytest.raises(NoPermissionError):
        await clients["coordinator"].hset(job_keys("j2").approvals, request.id, request.model_dump_json())


async def test_a_role_records_its_steps_work_and_asks_for_approval(
    clients: dict[str, aioredis.Redis], nc: NATS
) -> None:
    js = nc.jetstream()
    await ensure_streams(js, BusSettings())
    role = clients[ROLE]
    await _job(RedisJobStore(clients["api"]), RedisJobStore(clients["coordinator"]), "j3")
    keys = job_keys("j3")
    await role.hset(keys.progress, "a", 2)  # the step's start, with its delivery (roles.step.start)
    started = await RedisJobStore(clients["coordinator"]).get("j3")  # what the coordinator and API read
    assert (started.steps["a"], started.attempts["a"]) == ("working", 2)
    checkpoint = StepCheckpoint(role, keys.turns, "j3", "a", {})
    assert await checkpoint.tool_result(0, 0, _ran) == "ran"
    results = ResultStore(role, keys.results, job="j3", state_key=keys.state)  # as a worker's step writes
    held = RedisUsage(role, keys.usage, limit=1000, hold=True)  # the step's last call's usage, held
    await held.record("j3", "writer", Usage(input_tokens=4, output_tokens=3))
    result = StepResult(output="first", role="writer")
    _, ours = await results.record("a", result, clearing=checkpoint, usage=held)
    assert (
        ours and await role.hlen(keys.turns) == 0
    )  # the status read, the result, the checkpoint's removal and the usage, in one script
    assert await held.used_tokens() == 7
    await SharedMemory(role, keys.memory).write("note", "kept")
    usage = RedisUsage(role, keys.usage, limit=1000)
    await usage.check("j3", "writer", reserve=100)  # the reservation script
    await usage.record("j3", "writer", Usage(input_tokens=10, output_tokens=5), reserved=100)
    assert await usage.used_tokens() == 22
    first = RedisUsage(
        role, keys.usage, limit=1000, hold=True
    )  # a step's start with its first call's reservation
    await read_start(
        role, make_work("j3", "b"), 1, budget=first, first_call=FirstCall(tokens=50, memory_chars=100)
    )
    assert await role.get(first.reserved_key) == str(50 + (4 + 4 + 8) // 3)  # the memory {"note": "kept"}
    await first.flush()
    checkpoint = StepCheckpoint(role, keys.turns, "j3", "a", {})
    assert await checkpoint.tool_result(0, 0, _ran) == "ran"
    await checkpoint.clear()  # the clearing script
    assert await role.hget(keys.state, "status") == "running"  # the cancel watch reads the job's state
    assert await RedisJobStore(clients["api"]).memory("j3") == {"note": "kept"}

    tasks = RedisTaskStore(role, "research.writer")
    task = Task(id="t1", context_id="c", status=TaskStatus(state=TaskState.TASK_STATE_WORKING))
    await tasks.save(task, ServerCallContext())
    assert await tasks.get("t1", ServerCallContext()) is not None
    await stop_call(nc, role, "research", "writer", "t1")  # its own A2A call's job
    assert await role.hget(job_keys(job_of("t1")).state, "status") == "canceled"

    request = pending_record(step="a", role="writer", tool="send_mail", call_id="c1", arguments={"to": "x"})
    assert await role.hsetnx(keys.approvals, request.id, request.model_dump_json())
    assert [a.status for a in await list_approvals(RedisJobStore(clients["api"]), "j3")] == ["pending"]


async def test_a_role_cannot_write_a_crew_an_approval_or_a_jobs_state(
    clients: dict[str, aioredis.Redis], nc: NATS
) -> None:
    js = nc.jetstream()
    await ensure_streams(js, BusSettings())
    role, as_role = clients[ROLE], RedisJobStore(clients[ROLE])
    api = RedisJobStore(clients["api"])
    await _job(api, RedisJobStore(clients["coordinator"]), "j4")
    keys = job_keys("j4")
    request = pending_record(step="a", role="writer", tool="send_mail", call_id="c1", arguments={"to": "x"})
    assert await role.hsetnx(keys.approvals, request.id, request.model_dump_json())

    with pytest.raises(NoPermissionError):
        await as_role.save_crew(load_crew_text(CREW.replace("research", "evil"), "evil.yaml"))
    with pytest.raises(NoPermissionError):
        await as_role.delete_crew("research")
    with pytest.raises(ResponseError, match="No permissions to access a key"):
        await decide(js, as_role, "j4", request.id, approve=True, decided_by="writer")
    approved = request.model_copy(update={"status": "approved", "decided_by": "writer"})
    with pytest.raises(NoPermissionError):
        await role.hset(keys.approvals, request.id, approved.model_dump_json())
    with pytest.raises(NoPermissionError):
        await role.hdel(keys.approvals, request.id)
    with pytest.raises(NoPermissionError):
        await role.delete(keys.approvals)
    assert not await role.hsetnx(keys.approvals, request.id, approved.model_dump_json())  # exists: unchanged
    with pytest.raises(NoPermissionError):
        await as_role.finish("j4", "completed", output="forged")
    with pytest.raises(NoPermissionError):
        await RedisTaskStore(role, "research.reviewer").delete("t1", ServerCallContext())
    with pytest.raises(NoPermissionError):
        await role.flushall()
    with pytest.raises(NoPermissionError):
        await role.keys("*")

    assert (await api.get_crew("research")).name == "research"
    assert [(a.status, a.decided_by) for a in await list_approvals(api, "j4")] == [("pending", None)]
    assert (await api.get("j4")).status == "running"
    assert OTHER in clients  # another role's user exists, with its own task store


async def _ran() -> str:
    return "ran"


def test_each_process_reads_its_own_users_url() -> None:
    objects = render({**example_values(), "redis": {"auth": {"seed": "test-seed"}}})
    users = {
        s["metadata"]["name"]: s["metadata"]["annotations"]["crews.dev/redis-user"]
        for s in of_kind(objects, "Secret")
        if "crews.dev/redis-user" in s["metadata"].get("annotations", {})
    }
    seen: dict[str, str] = {}
    for deployment in of_kind(objects, "Deployment"):
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container.get("env", [])}
        if "CREWS_REDIS_URL" not in env:
            continue  # vLLM, MCP servers
        ref = env["CREWS_REDIS_URL"]["valueFrom"]["secretKeyRef"]
        annotations = deployment["metadata"].get("annotations", {})
        expected = (
            f"role.{annotations['crews.dev/crew']}.{annotations['crews.dev/role']}"
            if "crews.dev/role" in annotations
            else deployment["metadata"]["labels"]["app.kubernetes.io/component"]
        )
        assert users[ref["name"]] == expected and ref["key"] == "url"
        seen[deployment["metadata"]["name"]] = expected
    assert len(set(seen.values())) == len(seen) == len(users) - 1  # one user each; admin is no pod's


def test_without_auth_or_with_an_existing_secret_every_process_shares_one_url() -> None:
    for redis in ({"auth": {"enabled": False}}, {"existingSecret": "mine"}):
        objects = render({**example_values(), "redis": redis})
        secrets = of_kind(objects, "Secret")
        assert not [s for s in secrets if "users.acl" in s.get("stringData", {})]
        refs = {
            e["valueFrom"]["secretKeyRef"]["name"]
            for d in of_kind(objects, "Deployment")
            for e in d["spec"]["template"]["spec"]["containers"][0].get("env", [])
            if e["name"] == "CREWS_REDIS_URL"
        }
        assert refs == {redis.get("existingSecret") or f"{RELEASE}-crews-redis"}


def test_a_url_with_credentials_is_refused_while_each_user_gets_its_own() -> None:
    with pytest.raises(Exception, match="does not match pattern"):
        render({**example_values(), "redis": {"url": "redis://:secret@redis:6379/0"}})
