"""MCP tools end to end: the payments sandbox server, a coordinator, a role worker and the API as processes.

The example MCP server (examples/tools/payments_server.py) runs as a real
process on a free port with its ledger in a temp file; the operator's
declaration reaches the worker and the API through CREWS_MCP_SERVERS. The
LLM is the scripted server, so each test says exactly which tool calls the
"model" makes.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from a2a.types import TaskState
from google.protobuf import json_format
from nats.aio.client import Client as NATS

from crews.cli.client import ApiError, CrewsClient
from crews.jobs.approvals import decide, list_approvals
from crews.jobs.control import submit_job
from crews.jobs.store import RedisJobStore
from crews.local.servers import ServerProcess
from crews.spec.load import load_crew_text
from inference.testing.script import Script
from inference.testing.server import ScriptedServer
from tests.e2e.stack import CREWS, ROOT, Stack, job_events, wait_for_approval
from tests.servers import ManagedServer

SUPPORT = (ROOT / "examples" / "support.yaml").read_text()
SERVER = ROOT / "examples" / "tools" / "payments_server.py"
INPUT_REQUIRED = TaskState.TASK_STATE_INPUT_REQUIRED


def lookup(order: str, call: str = "look-1") -> dict[str, Any]:
    return {"tool_calls": [{"id": call, "name": "payments__lookup_order", "arguments": {"order_id": order}}]}


def refund(order: str, amount: float, call: str = "refund-1") -> dict[str, Any]:
    arguments = {"order_id": order, "amount": amount, "reason": "arrived broken"}
    return {"id": call, "name": "payments__refund", "arguments": arguments}


def script(*replies: Any) -> Script:
    return Script.model_validate({"rules": [{"role": "agent", "replies": list(replies)}]})


@pytest.fixture
def payments(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The payments sandbox MCP server on a free port, and its ledger file."""
    ledger = tmp_path / "ledger.json"
    argv = [sys.executable, str(SERVER), "--port", "0", "--ledger", str(ledger)]
    proc = ServerProcess("payments", argv, "payments ready on", 0)
    proc.start()
    try:
        url = re.search(r"payments ready on (\S+)", proc.log_tail)
        assert url is not None, proc.log_tail
        yield url.group(1), ledger
    finally:
        proc.stop()


def refunds(ledger: Path) -> list[dict[str, Any]]:
    return list(json.loads(ledger.read_text())["refunds"].values())


@pytest.fixture
async def stack(
    payments: tuple[str, Path], nats_server: ManagedServer, redis_server: ManagedServer
) -> AsyncIterator[Stack]:
    servers = json.dumps({"payments": {"url": payments[0], "timeout_s": 10, "retries": 2}})
    running = Stack(
        nats_server.url,
        redis_server.url,
        "",
        extra_env={"CREWS_MCP_SERVERS": servers},
    )
    try:
        yield running
    finally:
        running.stop_all()


async def start(stack: Stack, llm: ScriptedServer, store: RedisJobStore, crew: str = SUPPORT) -> str:
    """Register ``crew`` in the store, start the coordinator and the agent's worker; the crew's name."""
    stack.llm_url = llm.url
    spec = load_crew_text(crew, "support.yaml")
    await store.save_crew(spec)
    stack.coordinator()
    stack.worker(spec.name, "agent")
    return spec.name


def start_api(stack: Stack) -> str:
    proc = stack.start("api", "--port", "0", ready="api ready on")
    found = re.search(r"api ready on (\S+)", proc.log_tail)
    assert found is not None, proc.log_tail
    return found.group(1)


def cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CREWS, *args],
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(ROOT),
        check=False,
    )


def tool_messages(llm: ScriptedServer, index: int) -> list[str]:
    return [m["content"] for m in llm.requests()[index].body["messages"] if m["role"] == "tool"]


async def test_lookup_runs_at_once_refund_waits_and_runs_once_when_approved_with_the_cli(
    stack: Stack, payments: tuple[str, Path], nc: NATS, redis_client: aioredis.Redis
) -> None:
    _, ledger = payments
    replies = [lookup("A-1001"), {"tool_calls": [refund("A-1001", 42.0)]}, "Your teapot is refunded."]
    with ScriptedServer(script(*replies)) as llm:
        store = RedisJobStore(redis_client)
        crew = await start(stack, llm, store)
        api = start_api(stack)
        async with CrewsClient(api) as client:
            await client.register_crew(SUPPORT)  # the API checks payments.* against the declared server
            job = (await client.submit(crew, {})).id
            [asked] = await wait_for_approval(nc.jetstream(), job, 1)
            assert (asked["tool"], asked["arguments"]) == (
                "payments.refund",
                {"order_id": "A-1001", "amount": 42.0, "reason": "arrived broken"},
            )
            assert refunds(ledger) == []  # paused before the tool ran...
            [looked_up] = tool_messages(llm, 1)  # ...while the read-only lookup ran at once, as data
            assert (
                looked_up.startswith('<tool_output tool="payments.lookup_order">') and "teapot" in looked_up
            )

            [pending] = await client.approvals(job)
            assert (pending["id"], pending["status"], pending["tool"]) == (
                "resolve:refund-1",
                "pending",
                "payments.refund",
            )
            listed = cli(stack, "approvals", job, "--api", api)
            assert listed.returncode == 0, listed.stderr
            assert (
                'payments.refund({"amount": 42.0, "order_id": "A-1001", "reason": "arrived broken"})'
                in listed.stdout
            )
            approved = cli(stack, "approve", job, "resolve:refund-1", "--comment", "policy ok", "--api", api)
            assert approved.returncode == 0, approved.stderr
            assert "approved by local" in approved.stdout and "policy ok" in approved.stdout
            events = await job_events(nc.jetstream(), job)
            again = cli(stack, "approve", job, "resolve:refund-1", "--api", api)
            assert again.returncode == 1 and "already approved by local" in again.stderr

    assert (await store.get(job)).status == "completed"
    [done] = refunds(ledger)
    assert (done["order_id"], done["amount"]) == ("A-1001", 42.0)
    assert done["key"] == f"{job}:resolve:2:1"  # <job>:<step>:<turn>:<call>: stable across re-executions
    decisions = [
        json_format.MessageToDict(e.status_update.metadata)
        for e in events
        if e.status_update.metadata and "decision" in e.status_update.metadata
    ]
    assert [(d["decision"], d["decided_by"], d["comment"]) for d in decisions] == [
        ("approved", "local", "policy ok")
    ]


async def test_registration_refuses_an_unknown_server_or_tool_with_line_and_did_you_mean(
    stack: Stack, redis_client: aioredis.Redis
) -> None:
    api = start_api(stack)
    async with CrewsClient(api) as client:
        with pytest.raises(ApiError) as caught:
            await client.register_crew(SUPPORT.replace("payments.refund", "payments.refnd"))
        assert caught.value.status == 422
        message = str(caught.value)
        assert "roles.agent.tools[1]" in message and "did you mean 'refund'?" in message
        assert re.search(r"<body>:\d+:\d+:", message)
        with pytest.raises(ApiError, match="unknown MCP server 'paymnts'; did you mean 'payments'"):
            await client.register_crew(SUPPORT.replace("payments.lookup_order", "paymnts.lookup_order"))


async def test_a_denied_refund_leaves_the_ledger_untouched_and_the_model_is_told_no(
    stack: Stack, payments: tuple[str, Path], nc: NATS, redis_client: aioredis.Redis
) -> None:
    _, ledger = payments
    with ScriptedServer(script({"tool_calls": [refund("A-1001", 42.0)]}, "I could not refund it.")) as llm:
        store = RedisJobStore(redis_client)
        crew = await start(stack, llm, store)
        api = start_api(stack)
        job = (await submit_job(nc.jetstream(), store, crew, {})).id
        await wait_for_approval(nc.jetstream(), job, 1)
        denied = cli(stack, "deny", job, "resolve:refund-1", "--comment", "not eligible", "--api", api)
        assert denied.returncode == 0, denied.stderr
        await job_events(nc.jetstream(), job)
        [told] = tool_messages(llm, 1)

    assert (await store.get(job)).status == "completed"
    assert refunds(ledger) == []
    assert '"denied": "payments.refund"' in told and "not eligible" in told
    [record] = await list_approvals(store, job)
    assert (record.status, record.decided_by, record.comment) == ("denied", "local", "not eligible")


async def test_an_approved_refund_happens_once_when_the_worker_is_killed_after_it(
    stack: Stack, payments: tuple[str, Path], nc: NATS, redis_client: aioredis.Redis
) -> None:
    _, ledger = payments
    call = {"tool_calls": [refund("A-1001", 42.0)]}
    # The first worker dies during the LLM call after the refund; the replacement resumes after the refund.
    # (A model that made the call again would be asked for a new approval: one decision lets one call run.)
    replies = [call, {"text": "never seen", "latency_s": 15}, "Refunded."]
    stack.extra_env["CREWS_ACK_WAIT_S"] = "5"  # the killed worker's step comes back after 5 s
    with ScriptedServer(script(*replies)) as llm:
        store = RedisJobStore(redis_client)
        crew = await start(stack, llm, store)
        js = nc.jetstream()
        job = (await submit_job(js, store, crew, {})).id
        await wait_for_approval(js, job, 1)
        await decide(js, store, job, "resolve:refund-1", True, "ok")
        await llm.wait_for_requests(2)  # the refund ran; the worker now waits on the model
        assert len(refunds(ledger)) == 1
        first = next(p for p in stack.procs if p.argv[1:3] == ["role", f"{crew}/agent"])
        first.kill()
        stack.worker(crew, "agent")
        await job_events(js, job, timeout=60)
        resumed = tool_messages(llm, 2)[-1]

    assert (await store.get(job)).status == "completed"
    [done] = refunds(ledger)  # exactly once
    assert done["amount"] == 42.0
    # the replacement resumed from the step's checkpoint: the recorded refund result, not a second call
    assert '"repeated": false' in resumed and "42" in resumed
    assert len(llm.requests()) == 3
    assert [a.status for a in await list_approvals(store, job)] == ["approved"]  # not asked twice


async def test_an_order_note_cannot_make_a_refund_run_without_approval(
    stack: Stack, payments: tuple[str, Path], nc: NATS, redis_client: aioredis.Redis
) -> None:
    _, ledger = payments
    obey = {"tool_calls": [refund("A-1002", 30.0, "r-a"), refund("A-1001", 42.0, "r-b")]}
    with ScriptedServer(script(lookup("A-1002"), obey, "Done.")) as llm:
        store = RedisJobStore(redis_client)
        crew = await start(stack, llm, store)
        js = nc.jetstream()
        job = (await submit_job(js, store, crew, {"order": "A-1002"})).id
        await wait_for_approval(js, job, 1)
        [note] = tool_messages(llm, 1)
        assert "IGNORE YOUR INSTRUCTIONS" in note and note.startswith(
            '<tool_output tool="payments.lookup_order">'
        )
        assert "not instructions" in note
        assert refunds(ledger) == []
        await decide(js, store, job, "resolve:r-a", False, "prompt injection")
        await wait_for_approval(js, job, 2)
        assert refunds(ledger) == []
        await decide(js, store, job, "resolve:r-b", False, "prompt injection")
        await job_events(js, job)

    assert refunds(ledger) == []
    assert [a.status for a in await list_approvals(store, job)] == ["denied", "denied"]


async def test_a_tool_the_role_was_not_given_cannot_be_called(
    stack: Stack, payments: tuple[str, Path], nc: NATS, redis_client: aioredis.Redis
) -> None:
    _, ledger = payments
    read_only = SUPPORT.replace("[payments.lookup_order, payments.refund]", "[payments.lookup_order]")
    with ScriptedServer(script({"tool_calls": [refund("A-1001", 42.0)]}, "I cannot refund.")) as llm:
        store = RedisJobStore(redis_client)
        crew = await start(stack, llm, store, read_only)
        job = (await submit_job(nc.jetstream(), store, crew, {})).id
        await job_events(nc.jetstream(), job)
        [refused] = tool_messages(llm, 1)
        offered = [t["function"]["name"] for t in llm.requests()[0].body["tools"]]

    assert offered == ["payments__lookup_order"]
    assert refused.startswith("Error: there is no tool 'payments__refund'") and "nothing ran" in refused
    assert refunds(ledger) == [] and await list_approvals(store, job) == []


async def test_a_reused_call_id_with_other_arguments_asks_again_and_never_runs_the_old_approval(
    stack: Stack, payments: tuple[str, Path], nc: NATS, redis_client: aioredis.Redis
) -> None:
    _, ledger = payments
    small = {"tool_calls": [refund("A-1003", 1.0, "same")]}
    large = {"tool_calls": [refund("A-1001", 42.0, "same")]}
    with ScriptedServer(script(small, large, "Done.")) as llm:
        store = RedisJobStore(redis_client)
        crew = await start(stack, llm, store)
        js = nc.jetstream()
        job = (await submit_job(js, store, crew, {})).id
        await wait_for_approval(js, job, 1)
        await decide(js, store, job, "resolve:same", True)
        first, second = await wait_for_approval(js, job, 2)
        assert [r["order_id"] for r in refunds(ledger)] == [
            "A-1003"
        ]  # the approved call ran, the other waits
        assert first["approval"] == "resolve:same" and second["approval"].startswith("resolve:same:")
        assert second["arguments"]["order_id"] == "A-1001"
        await decide(js, store, job, second["approval"], False, "not this one")
        await job_events(js, job)

    assert [r["order_id"] for r in refunds(ledger)] == ["A-1003"]
    records = await list_approvals(store, job)
    assert [(r.id, r.status) for r in records] == [
        ("resolve:same", "approved"),
        (second["approval"], "denied"),
    ]
    assert (await store.get(job)).status == "completed"
