"""The chart's NATS accounts config on a real nats-server: each user can do its job and nothing else.

The config and every user's URL are taken from the rendered Secrets (so the passwords of the
accounts config and of each component's Secret must agree), and the checks use the same bus
code the processes run (streams, dispatch, the work loop, events, dead letters).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import nats
import pytest
import redis.asyncio as aioredis
from a2a.client import ClientCallContext
from a2a.client.errors import A2AClientError
from a2a.types import GetTaskRequest, Part, StreamResponse, TaskState, TaskStatus, TaskStatusUpdateEvent
from a2a.utils.errors import TaskNotFoundError
from google.protobuf.json_format import MessageToJson
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError

from bus import subjects
from bus.a2a_nats.client import UNAUTHENTICATED_CODE, NatsTransport
from bus.connect import inbox_prefix
from bus.contracts.codec import decode
from bus.contracts.events import artifact_update, status_update
from bus.contracts.keys import StepKeys
from bus.jetstream.dead_letters import DeadLetter, ensure_advisory_capture, record_dead_letter
from bus.jetstream.dispatch import publish_durable
from bus.jetstream.events import follow_events, publish_event
from bus.jetstream.streams import ensure_jobs_consumer, ensure_role_consumer, ensure_streams
from bus.jetstream.work_loop import Delivery, WorkLoop
from bus.settings import BusSettings
from crews.api.routes.events import last_sequence
from crews.jobs.events import publish_job_output, publish_job_status
from crews.local.servers import ServerProcess, free_port, nats_server_binary
from inference.testing.script import Script
from inference.testing.server import ScriptedServer
from roles.errors import StepCancelled
from roles.outside_agents import OutsideAgent
from roles.step.cancel import CancelWatch
from tests.chart.render import CHART, Obj, example_values, of_kind, render
from tests.child_env import child_env
from tests.roles.helpers import make_work
from tests.servers import ManagedServer
from tests.waits import all_acked

CREW, ROLE, OTHER = "research", "writer", "reviewer"
DENIED = "permissions violation"  # nats-py lower-cases the server's -ERR
WRITER_AGENT = "writer-agent"
"""The operator's outside agent that the reviewer calls: the writer's A2A agent on the bus."""


def chart_values() -> dict[str, object]:
    """The examples' values, with the reviewer calling the writer as its outside agent (``nats:``)."""
    values = {**example_values(), "nats": {"auth": {"seed": "test-seed"}}}
    values["a2aAgents"] = {WRITER_AGENT: {"nats": f"{CREW}.{ROLE}"}}
    values["crews"][CREW]["roles"][OTHER]["outsideAgent"] = WRITER_AGENT  # type: ignore[index]
    return values


class Users:
    """Each NATS user of the release: its URL on the test server."""

    def __init__(self, objects: list[Obj], port: int) -> None:
        self.urls: dict[str, str] = {}
        for secret in of_kind(objects, "Secret"):
            user = secret["metadata"].get("annotations", {}).get("crews.dev/nats-user")
            if user:
                parts = urlsplit(secret["stringData"]["url"])
                self.urls[user] = f"nats://{parts.username}:{parts.password}@127.0.0.1:{port}"

    def role(self, crew: str, role: str) -> str:
        return self.urls[f"role.{crew}.{role}"]


@pytest.fixture(scope="module")
def chart_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Users]:
    objects = render(chart_values())
    [accounts] = [o for o in of_kind(objects, "Secret") if "accounts.conf" in o.get("stringData", {})]
    tmp: Path = tmp_path_factory.mktemp("chart-nats")
    (tmp / "accounts.conf").write_text(accounts["stringData"]["accounts.conf"])
    port = free_port()
    (tmp / "server.conf").write_text(
        f'listen: "127.0.0.1:{port}"\njetstream {{store_dir: "{tmp / "js"}"}}\ninclude "accounts.conf"\n'
    )
    server = ServerProcess(
        "nats-server", [nats_server_binary(), "-c", str(tmp / "server.conf")], "Server is ready", port
    )
    server.start()
    try:
        yield Users(objects, port)
    finally:
        server.kill()


class Conn:
    def __init__(self, nc: NATS, errors: list[str], arrived: asyncio.Condition) -> None:
        self.nc, self.errors, self.arrived = nc, errors, arrived
        self.js = nc.jetstream(timeout=2.0)

    async def denied(self, what: str) -> None:
        """Wait for the server's permissions violation naming ``what`` (errors arrive on the error callback)."""

        def seen() -> bool:
            return any(DENIED in e.lower() and what.lower() in e.lower() for e in self.errors)

        try:
            async with self.arrived:
                await asyncio.wait_for(self.arrived.wait_for(seen), 2.0)
        except TimeoutError:
            raise AssertionError(f"no permissions violation for {what!r}: {self.errors}") from None


@pytest.fixture
async def connect() -> AsyncIterator[object]:
    opened: list[NATS] = []

    async def open_as(url: str) -> Conn:
        errors: list[str] = []
        arrived = asyncio.Condition()

        async def on_error(exc: Exception) -> None:
            async with arrived:
                errors.append(str(exc))
                arrived.notify_all()

        nc = await nats.connect(
            url,
            inbox_prefix=inbox_prefix(BusSettings(nats_url=url)),  # as every crews process connects
            error_cb=on_error,
            max_reconnect_attempts=0,
            allow_reconnect=False,
        )
        opened.append(nc)
        return Conn(nc, errors, arrived)

    yield open_as
    for nc in opened:
        await nc.close()


@pytest.fixture
async def bus(chart_nats: Users, connect: object) -> Conn:
    """The coordinator's connection, with the streams and the role consumers it creates."""
    coordinator: Conn = await connect(chart_nats.urls["coordinator"])  # type: ignore[operator]
    settings = BusSettings()
    for name in [s.config.name for s in await coordinator.js.streams_info()]:
        await coordinator.js.delete_stream(name or "")
    await ensure_streams(coordinator.js, settings)
    await ensure_jobs_consumer(coordinator.js, settings)
    await ensure_advisory_capture(coordinator.js, [subjects.TASKS_STREAM, subjects.JOBS_STREAM])
    for role in (ROLE, OTHER):
        await ensure_role_consumer(coordinator.js, CREW, role, settings)
    return coordinator


async def test_role_worker_takes_its_own_steps(chart_nats: Users, bus: Conn, connect: object) -> None:
    worker: Conn = await connect(chart_nats.role(CREW, ROLE))  # type: ignore[operator]
    consumer = await ensure_role_consumer(worker.js, CREW, ROLE, BusSettings())  # its own: allowed
    await publish_durable(
        bus.js, subjects.task_subject(CREW, ROLE), b"step", "job1:write:1", subjects.TASKS_STREAM
    )
    got: list[Delivery] = []
    done = asyncio.Event()

    async def handle(delivery: Delivery) -> None:
        got.append(delivery)
        await publish_event(worker.js, "job1", _working("job1"), "job1:write:working", role=(CREW, ROLE))
        done.set()

    loop = WorkLoop(worker.js, subjects.TASKS_STREAM, consumer, handle)
    runner = asyncio.create_task(loop.run())
    await asyncio.wait_for(done.wait(), 10)
    loop.stop()
    await asyncio.wait_for(runner, 10)
    assert [d.data for d in got] == [b"step"]
    info = await all_acked(bus.js, subjects.TASKS_STREAM, consumer)  # acked by the worker
    assert info.num_pending == 0
    dead = DeadLetter(
        stream=subjects.TASKS_STREAM, consumer=consumer, subject=got[0].subject,
        stream_seq=got[0].stream_seq, deliveries=5, reason="test", payload_b64="",
    )  # fmt: skip
    await record_dead_letter(worker.js, dead)
    assert worker.errors == []


async def test_role_worker_cannot_touch_other_roles(chart_nats: Users, bus: Conn, connect: object) -> None:
    worker: Conn = await connect(chart_nats.role(CREW, ROLE))  # type: ignore[operator]
    worker.js = worker.nc.jetstream(timeout=0.5)  # denied requests get no answer
    other = subjects.role_consumer(CREW, OTHER)
    with pytest.raises((NatsError, asyncio.TimeoutError)):
        await worker.js.consumer_info(subjects.TASKS_STREAM, other)
    await worker.denied(f"$JS.API.CONSUMER.INFO.{subjects.TASKS_STREAM}.{other}")
    await worker.nc.subscribe(subjects.TASKS_ALL)  # snooping on every step
    await worker.denied(subjects.TASKS_ALL)
    await worker.nc.subscribe(subjects.a2a_subject(f"{CREW}.{OTHER}"))
    await worker.denied(subjects.a2a_subject(f"{CREW}.{OTHER}"))
    await worker.nc.publish(subjects.task_subject(CREW, OTHER), b"forged step")
    await worker.denied(subjects.task_subject(CREW, OTHER))
    await worker.nc.publish(subjects.JOBS_SUBMIT, b"forged job")
    await worker.denied(subjects.JOBS_SUBMIT)
    with pytest.raises((NatsError, asyncio.TimeoutError)):
        await worker.js.delete_stream(subjects.TASKS_STREAM)
    await worker.denied(f"$JS.API.STREAM.DELETE.{subjects.TASKS_STREAM}")
    await worker.js.stream_info(subjects.TASKS_STREAM)  # reading is allowed, changing is not:
    with pytest.raises((NatsError, asyncio.TimeoutError)):
        await ensure_streams(worker.js, BusSettings())
    await worker.denied("$JS.API.STREAM.UPDATE.")


async def test_api_submits_jobs_and_follows_events(chart_nats: Users, bus: Conn, connect: object) -> None:
    api: Conn = await connect(chart_nats.urls["api"])  # type: ignore[operator]
    worker: Conn = await connect(chart_nats.role(CREW, ROLE))  # type: ignore[operator]
    await publish_durable(api.js, subjects.JOBS_SUBMIT, b"{}", "job:job2", subjects.JOBS_STREAM)
    await publish_job_status(api.js, "job2", "submitted")
    role_seq = await publish_event(
        worker.js, "job2", _working("job2"), "job2:write:working", role=(CREW, ROLE)
    )
    events = follow_events(api.js, "job2")
    try:
        first = await asyncio.wait_for(anext(events), 10)
    finally:
        await events.aclose()  # type: ignore[attr-defined]
    assert first.event.status_update.context_id == "job2"
    assert first.seq < role_seq == await last_sequence(api.js, "job2")  # SSE resume: the role's event
    await api.js.stream_info(subjects.TASKS_STREAM)  # readiness and /metrics
    await api.js.consumer_info(subjects.TASKS_STREAM, subjects.role_consumer(CREW, ROLE))
    await api.nc.publish(subjects.task_subject(CREW, ROLE), b"step past the coordinator")
    await api.denied(subjects.task_subject(CREW, ROLE))
    assert [e for e in api.errors if subjects.task_subject(CREW, ROLE) not in e] == []


async def test_only_the_roles_that_name_a_role_agent_can_call_it(
    chart_nats: Users, bus: Conn, connect: object
) -> None:
    """The reviewer (its outside agent is the writer) gets answers; the API and the coordinator cannot call."""
    caller: Conn = await connect(chart_nats.role(CREW, OTHER))  # type: ignore[operator]
    worker: Conn = await connect(chart_nats.role(CREW, ROLE))  # type: ignore[operator]
    agent = subjects.a2a_subject(f"{CREW}.{ROLE}")

    async def answer(msg: nats.aio.msg.Msg) -> None:
        await msg.respond(b"pong")

    await worker.nc.subscribe(agent, queue="workers", cb=answer)
    await worker.nc.flush()
    reply = await caller.nc.request(agent, b"ping", timeout=5)
    assert reply.data == b"pong"
    assert worker.errors == [] and caller.errors == []
    for name in ("api", "coordinator"):
        other: Conn = await connect(chart_nats.urls[name])  # type: ignore[operator]
        await other.nc.publish(agent, b"a call")
        await other.denied(agent)
    stranger: Conn = await connect(chart_nats.role("demo", "writer"))  # type: ignore[operator]
    await stranger.nc.publish(agent, b"a call")
    await stranger.denied(agent)


async def test_a_role_publishes_only_its_own_events(chart_nats: Users, bus: Conn, connect: object) -> None:
    worker: Conn = await connect(chart_nats.role(CREW, ROLE))  # type: ignore[operator]
    worker.js = worker.nc.jetstream(timeout=0.5)  # denied publishes get no ack
    await publish_event(worker.js, "job3", _working("job3"), "job3:write:working", role=(CREW, ROLE))
    draft = artifact_update("job3.write", "job3", Part(text="draft"), name="write")
    await publish_event(worker.js, "job3", draft, "job3.write:artifact", role=(CREW, ROLE))
    for subject in (
        subjects.role_events_subject("job3", CREW, OTHER),  # another role of its crew
        subjects.role_events_subject("job3", "demo", ROLE),  # the same role name in another crew
        subjects.job_events_subject("job3"),  # the job's own subject: fail the job, end its streams
    ):
        with pytest.raises((NatsError, asyncio.TimeoutError)):
            await worker.js.publish(subject, b"forged", stream=subjects.EVENTS_STREAM)
        await worker.denied(subject)
    stored = await bus.js.stream_info(subjects.EVENTS_STREAM, subjects_filter="crews.events.job3.>")
    assert stored.state.subjects == {
        subjects.role_events_subject("job3", CREW, ROLE, "working"): 1,  # WORKING and artifacts: what the
        subjects.role_events_subject("job3", CREW, ROLE, "artifact"): 1,  # coordinator never fetches
    }
    await worker.nc.subscribe(subjects.role_events_subject("job3", CREW, OTHER))  # snooping a peer's steps
    await worker.denied(subjects.role_events_subject("job3", CREW, OTHER))


async def test_a_role_reads_the_jobs_signals_and_never_their_outputs_or_arguments(
    chart_nats: Users, bus: Conn, connect: object, redis_client: aioredis.Redis
) -> None:
    """The API's job-level events reach a role only as signals (state only), and only those a step waits on
    (a stop, an approval decided): the real CancelWatch stops on one."""
    api: Conn = await connect(chart_nats.urls["api"])  # type: ignore[operator]
    worker: Conn = await connect(chart_nats.role(CREW, ROLE))  # type: ignore[operator]
    job, secret = "job5", "the-final-output-and-tool-arguments"
    await worker.nc.subscribe(subjects.job_events_subject(job))  # the job's own events: output, decisions
    await worker.denied(subjects.job_events_subject(job))
    signals = await worker.nc.subscribe(subjects.job_signals_subject(job))
    await worker.nc.flush()
    for status in ("submitted", "running"):  # wake no step: not signalled
        await publish_job_status(api.js, job, status)
    decided = status_update(f"{job}.pay", job, TaskState.TASK_STATE_WORKING, f"pay: approved ({secret})")
    decided.metadata.update({"approval": "pay:c1", "arguments": {"note": secret}})
    await publish_event(api.js, job, decided, f"{job}.pay:approval:pay:c1:approved")
    await publish_job_output(api.js, job, secret)  # an artifact: no signal at all
    await redis_client.hset(f"crews:{{job:{job}}}:state", "status", "running")
    work = make_work(job, "write", keys=StepKeys.for_job(job))
    stopped = asyncio.Event()

    async def long_step() -> None:
        stopped.set()
        await asyncio.Event().wait()  # a generation that would run on

    watch = asyncio.ensure_future(CancelWatch(worker.nc, redis_client, work).run(long_step))
    await asyncio.wait_for(stopped.wait(), 10)
    await publish_job_status(api.js, job, "canceled", f"canceled: {secret}")
    with pytest.raises(StepCancelled):
        await asyncio.wait_for(watch, 10)
    got = [decode((await signals.next_msg(timeout=5)).data, StreamResponse) for _ in range(2)]
    assert [(e.status_update.task_id, e.status_update.status.state) for e in got] == [
        (f"{job}.pay", TaskState.TASK_STATE_WORKING),  # the approval gate wakes and reads Redis
        (job, TaskState.TASK_STATE_CANCELED),
    ]
    assert all(not e.status_update.HasField("metadata") and not e.status_update.status.HasField("message")
               for e in got)  # fmt: skip
    assert all(secret not in MessageToJson(e) for e in got)
    await publish_job_status(api.js, job, "completed")  # (after a stop only in this test) not signalled
    with pytest.raises(nats.errors.TimeoutError):  # neither was the output nor the job's other statuses
        await signals.next_msg(timeout=0.2)


async def test_no_user_reads_another_users_replies(chart_nats: Users, bus: Conn, connect: object) -> None:
    """Replies come to ``_INBOX_<user>``: the others' inboxes, and the shared ``_INBOX``, are closed."""
    api: Conn = await connect(chart_nats.urls["api"])  # type: ignore[operator]
    worker: Conn = await connect(chart_nats.role(CREW, ROLE))  # type: ignore[operator]
    other: Conn = await connect(chart_nats.role(CREW, OTHER))  # type: ignore[operator]
    assert api.nc.new_inbox().startswith(f"{subjects.user_inbox('api')}.")
    for inbox in (subjects.user_inbox("api"), subjects.user_inbox(f"role.{CREW}.{OTHER}"), "_INBOX"):
        await worker.nc.subscribe(f"{inbox}.>")
        await worker.denied(f"{inbox}.>")
    for user in ("coordinator", "api", "role.demo.writer"):  # answers only its callers (the reviewer)
        await worker.nc.publish(f"{subjects.user_inbox(user)}.forged", b"{}")
        await worker.denied(f"{subjects.user_inbox(user)}.forged")
    await api.js.stream_info(subjects.EVENTS_STREAM)  # each still gets its own replies
    await other.js.stream_info(subjects.TASKS_STREAM)
    assert api.errors == [] and other.errors == []


def _working(job: str) -> TaskStatusUpdateEvent:
    return TaskStatusUpdateEvent(
        task_id=f"{job}.write", context_id=job, status=TaskStatus(state=TaskState.TASK_STATE_WORKING)
    )


def test_accounts_config_is_valid_for_nats_server(tmp_path: Path) -> None:
    import subprocess

    objects = render(example_values())
    [accounts] = [o for o in of_kind(objects, "Secret") if "accounts.conf" in o.get("stringData", {})]
    (tmp_path / "accounts.conf").write_text(accounts["stringData"]["accounts.conf"])
    (tmp_path / "server.conf").write_text('jetstream {store_dir: "js"}\ninclude "accounts.conf"\n')
    check = subprocess.run(
        [nats_server_binary(), "-c", str(tmp_path / "server.conf"), "-t"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    assert len(accounts["stringData"]["seed"]) == 48  # kept in the Secret for upgrades


async def test_the_real_role_worker_and_api_start_as_their_chart_users(
    chart_nats: Users, bus: Conn, redis_server: ManagedServer, tmp_path: Path
) -> None:
    """`crews role` and `crews api` reach their ready lines under the chart's users, streams left to the coordinator."""
    crews = str(Path(sys.executable).with_name("crews"))
    base = child_env()
    base.update(CREWS_REDIS_URL=redis_server.url, CREWS_MANAGE_STREAMS="false", PYTHONUNBUFFERED="1")
    worker = ServerProcess(
        "role", [crews, "role", f"{CREW}/{ROLE}"], f"role {CREW}/{ROLE} ready", 0,
        env={**base, "CREWS_NATS_URL": chart_nats.role(CREW, ROLE)},
    )  # fmt: skip
    api = ServerProcess(
        "api",
        [crews, "api", "--port", "0"],
        "api ready",
        0,
        env={**base, "CREWS_NATS_URL": chart_nats.urls["api"]},
    )
    try:
        worker.start()
        api.start()
    finally:
        worker.stop()
        api.stop()
    for proc in (worker, api):
        assert DENIED not in proc.log_tail.lower(), proc.log_tail
        assert proc.proc is not None and proc.proc.returncode == 0, proc.log_tail


def role_env(objects: list[Obj], crew: str, role: str) -> dict[str, Obj]:
    """The env entries of the role's Deployment, by name."""
    [deployment] = [
        d
        for d in of_kind(objects, "Deployment")
        if d["metadata"].get("annotations", {}).get("crews.dev/crew") == crew
        and d["metadata"]["annotations"].get("crews.dev/role") == role
    ]
    return {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}


def chart_agent_keys() -> tuple[str, OutsideAgent, str]:
    """The writer's CREWS_ROLE_A2A_KEYS, the reviewer's declared agent and its credential, from the chart's Secrets."""
    objects = render(chart_values())
    secrets = {s["metadata"]["name"]: s["stringData"] for s in of_kind(objects, "Secret")}
    writer, reviewer = role_env(objects, CREW, ROLE), role_env(objects, CREW, OTHER)
    ref = writer["CREWS_ROLE_A2A_KEYS"]["valueFrom"]["secretKeyRef"]
    [declared] = json.loads(reviewer["CREWS_A2A_AGENTS"]["value"])
    credential = reviewer[declared["authorization_env"]]["valueFrom"]["secretKeyRef"]
    return (
        secrets[ref["name"]][ref["key"]],
        OutsideAgent.model_validate(declared),
        secrets[credential["name"]][credential["key"]],
    )


async def test_the_real_role_agent_takes_only_the_key_the_chart_gives_its_caller(
    chart_nats: Users,
    bus: Conn,
    connect: object,
    redis_server: ManagedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`crews role` under its chart user and the chart's CREWS_ROLE_A2A_KEYS: its declared caller's credential opens it."""
    keys, writer_agent, credential = chart_agent_keys()
    assert writer_agent.authorization_env is not None
    monkeypatch.setenv(
        writer_agent.authorization_env, credential
    )  # as the reviewer's pod gets it from the Secret
    crews = str(Path(sys.executable).with_name("crews"))
    base = child_env()
    base.update(CREWS_REDIS_URL=redis_server.url, CREWS_MANAGE_STREAMS="false", PYTHONUNBUFFERED="1")
    worker = ServerProcess(
        "role", [crews, "role", f"{CREW}/{ROLE}"], f"role {CREW}/{ROLE} ready", 0,
        env={**base, "CREWS_NATS_URL": chart_nats.role(CREW, ROLE), "CREWS_ROLE_A2A_KEYS": keys},
    )  # fmt: skip
    caller: Conn = await connect(chart_nats.role(CREW, OTHER))  # type: ignore[operator]
    agent = NatsTransport(caller.nc, subjects.a2a_subject(f"{CREW}.{ROLE}"), timeout=10)
    unknown = GetTaskRequest(id="no-such-task")
    worker.start()
    try:
        with pytest.raises(A2AClientError, match=str(UNAUTHENTICATED_CODE)):
            await agent.get_task(unknown)
        for wrong in (f"Bearer {keys[:-1]}", f"Bearer {keys}x", f"Basic {keys}"):
            with pytest.raises(A2AClientError, match=str(UNAUTHENTICATED_CODE)):
                await agent.get_task(
                    unknown, context=ClientCallContext(service_parameters={"Authorization": wrong})
                )
        keyed = ClientCallContext(service_parameters={"Authorization": writer_agent.authorization() or ""})
        with pytest.raises(TaskNotFoundError):  # past the key: the agent looked for the task
            await agent.get_task(unknown, context=keyed)
    finally:
        worker.stop()
    assert DENIED not in worker.log_tail.lower(), worker.log_tail
    assert "callers with a key of CREWS_ROLE_A2A_KEYS" in worker.log_tail


async def test_the_helm_test_script_passes_against_the_real_services_and_names_what_fails(
    chart_nats: Users, bus: Conn, redis_server: ManagedServer
) -> None:
    """files/helm_test.py, with the hook Pod's environment: the API under its user, the role's NATS user."""
    objects = render(chart_values())
    [pod] = of_kind(objects, "Pod")
    secrets = {s["metadata"]["name"]: s["stringData"] for s in of_kind(objects, "Secret")}
    env = _pod_env(pod, secrets)
    nats_user = urlsplit(env["CREWS_NATS_URL"]).username
    assert nats_user == "role.demo.explorer"
    crews = str(Path(sys.executable).with_name("crews"))
    base = child_env()
    base.update(CREWS_REDIS_URL=redis_server.url, CREWS_MANAGE_STREAMS="false", PYTHONUNBUFFERED="1")
    port = free_port()
    api = ServerProcess(
        "api", [crews, "api", "--port", str(port)], "api ready", port,
        env={**base, "CREWS_NATS_URL": chart_nats.urls["api"]},
    )  # fmt: skip
    script = str(CHART / "files" / "helm_test.py")
    with ScriptedServer() as llm:
        env.update(
            CREWS_NATS_URL=chart_nats.urls[nats_user],
            CREWS_REDIS_URL=redis_server.url,
            CREWS_TEST_API_URL=f"http://127.0.0.1:{port}",
            CREWS_LLM_URLS=llm.url,
            CREWS_TEST_POOL_PODS=f"127.0.0.1:{llm.port}",
            CREWS_LLM_MODEL=Script().model,
        )
        api.start()
        try:
            passed = await _run([sys.executable, script], {**base, **env})
            broken = await _run([sys.executable, script], {**base, **env, "CREWS_LLM_MODEL": "no-such-model"})
        finally:
            api.stop()
    assert passed[0] == 0, passed[1]
    lines = passed[1].splitlines()
    assert [line.split(" ")[0] for line in lines] == ["api", "nats", "redis", "llm"], lines
    assert "stream CREWS_TASKS" in lines[1]
    assert "2 endpoints" in lines[3]  # the URL and the one address the "headless" name resolves to
    assert broken[0] == 1
    assert "FAILED check_pool" in broken[1] and "no-such-model" in broken[1]


async def _run(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def _pod_env(pod: Obj, secrets: dict[str, dict[str, str]]) -> dict[str, str]:
    """The Pod's environment with each secretKeyRef read from the rendered Secrets."""
    env = {}
    for item in pod["spec"]["containers"][0]["env"]:
        ref = item.get("valueFrom", {}).get("secretKeyRef")
        env[item["name"]] = secrets[ref["name"]][ref["key"]] if ref else item["value"]
    return env
