"""A hierarchical crew's manager reviews each result across processes: accept, send back, delegate, stop.

The coordinator and one worker per role run as real processes on the test's
NATS and Redis; the manager's decisions are the scripted LLM's JSON answers to
its review steps (``_review-<step>``), checked against the decision schema by
the manager's worker and applied by the coordinator as new plan versions.
"""

from __future__ import annotations

from typing import Any

import httpx
from a2a.types import StreamResponse, TaskState
from nats.aio.client import Client as NATS

from bus.contracts.events import ManagerDecision, decision_of, event_kind
from crews.jobs.control import submit_job
from crews.jobs.store import RedisJobStore
from crews.local.servers import free_port
from inference.testing.script import Script
from inference.testing.server import ScriptedServer
from tests.e2e.stack import Stack, job_events, register, wait_for_step_state
from tests.servers import ManagedServer

CREW = """\
name: party
process: hierarchical
manager: lead
roles:
  lead: {role: Party Lead, goal: Give each task to the right person and check the work.}
  cook: {role: Cook, goal: Plan good food.}
  writer: {role: Writer, goal: Write short notes.}
tasks:
  shop: {description: List the food to buy., expected_output: A list.}
  invite: {description: Write an invitation., expected_output: A short note., agent: writer}
budgets: {max_steps: 5}
"""
ASSIGN = {"role": "lead", "step": "_manager", "replies": [{"json": {"shop": "cook"}}]}


def decide(decision: str, **fields: Any) -> dict[str, Any]:
    return {"json": {"decision": decision, "feedback": "", "member": None, "description": "",
                     "expected_output": "", **fields}}  # fmt: skip


def script(*reviews: dict[str, Any]) -> Script:
    """The manager assigns shop to the cook, answers these review rules, and accepts everything else."""
    rules = [ASSIGN, *reviews, {"role": "lead", "replies": [decide("accept")]}]
    return Script.model_validate({"rules": rules, "default": [{"echo": "{role} did {step}"}]})


def decisions(events: list[StreamResponse]) -> list[ManagerDecision]:
    told = [decision_of(e.status_update) for e in events if e.HasField("status_update")]
    return [d for d in told if d is not None]


async def run_job(
    nats_server: ManagedServer,
    redis_server: ManagedServer,
    nc: NATS,
    store: RedisJobStore,
    llm: ScriptedServer,
) -> tuple[str, list[StreamResponse]]:
    await register(store, CREW, "party.yaml")
    stack = Stack(nats_server.url, redis_server.url, llm.url)
    try:
        stack.coordinator()
        for role in ("lead", "cook", "writer"):
            stack.worker("party", role)
        job = (await submit_job(nc.jetstream(), store, "party", {})).id
        return job, await job_events(nc.jetstream(), job)
    finally:
        stack.stop_all()


def prompts(llm: ScriptedServer, step: str) -> list[str]:
    """The user message of every LLM request of ``step``."""
    return [str(r.body["messages"][1]["content"]) for r in llm.requests() if r.step == step]


async def test_the_manager_accepts_each_result_and_the_api_shows_its_decisions(
    nats_server: ManagedServer, redis_server: ManagedServer, nc: NATS, store: RedisJobStore
) -> None:
    await register(store, CREW, "party.yaml")
    port = free_port()
    with ScriptedServer(script()) as llm:
        stack = Stack(nats_server.url, redis_server.url, llm.url, {"CREWS_API_PORT": str(port)})
        try:
            stack.coordinator()
            for role in ("lead", "cook", "writer"):
                stack.worker("party", role)
            stack.start("api", ready="api ready on")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                submitted = await client.post("/crews/party/jobs", json={})
                job = submitted.json()["id"]
                events = await job_events(nc.jetstream(), job)
                view = (await client.get(f"/jobs/{job}")).json()
        finally:
            stack.stop_all()

    assert (view["status"], view["reason"], view["output"]) == ("completed", "", "writer did invite")
    assert [(d["review"], d["step"], d["decision"], d["member"]) for d in view["decisions"]] == [
        ("_review-shop", "shop", "accept", "cook"),
        ("_review-invite", "invite", "accept", "writer"),
    ]
    assert [s["id"] for s in view["steps"]] == [
        "_manager",
        "shop",
        "_review-shop",
        "invite",
        "_review-invite",
    ]
    assert [d.model_dump(mode="json") for d in decisions(events)] == view["decisions"]
    told = [e.status_update for e in events if e.HasField("status_update") and decision_of(e.status_update)]
    assert {event_kind(e) for e in told} == {"job.decision"}
    assert told[0].status.message.parts[0].text == "the manager accepted shop (cook)"
    review = prompts(llm, "_review-shop")
    assert len(review) == 1 and "cook did shop" in review[0]  # the manager saw the result


async def test_the_manager_sends_a_result_back_with_feedback(
    nats_server: ManagedServer, redis_server: ManagedServer, nc: NATS, store: RedisJobStore
) -> None:
    back = {
        "role": "lead",
        "step": "_review-shop",
        "replies": [decide("revise", feedback="Add tea for six.")],
    }
    with ScriptedServer(script(back)) as llm:
        job, events = await run_job(nats_server, redis_server, nc, store, llm)
        first, second = prompts(llm, "shop"), prompts(llm, "_try2-shop")
        invite = prompts(llm, "invite")

    record = await store.get(job)
    assert (record.status, record.reason) == ("completed", "")
    assert [(d.decision, d.step, d.new_step, d.feedback) for d in decisions(events)] == [
        ("revise", "shop", "_try2-shop", "Add tea for six."),
        ("accept", "_try2-shop", None, ""),
        ("accept", "invite", None, ""),
    ]
    assert "Add tea for six." not in first[0]
    assert len(second) == 1 and "Add tea for six." in second[0] and "cook did shop" in second[0]
    assert "cook did _try2-shop" in invite[0]  # the steps after it got the new attempt's answer
    results = await store.results(job)
    assert results["_try2-shop"].role == "cook"


async def test_the_manager_delegates_a_further_task_as_a_new_plan_version(
    nats_server: ManagedServer, redis_server: ManagedServer, nc: NATS, store: RedisJobStore
) -> None:
    menu = decide("delegate", member="writer", feedback="Guests want a menu.", description="Write a menu card.",
                  expected_output="A menu.")  # fmt: skip
    with ScriptedServer(script({"role": "lead", "step": "_review-shop", "replies": [menu]})) as llm:
        job, events = await run_job(nats_server, redis_server, nc, store, llm)
        further = prompts(llm, "_delegated-shop")

    record = await store.get(job)
    assert record.status == "completed" and record.plan is not None
    added = record.plan.step("_delegated-shop")
    assert (added.kind, added.role, added.context) == ("added", "writer", ["shop"])
    assert 3 <= added.added_in <= record.plan_version  # the plan grew as a new version
    [told] = [d for d in decisions(events) if d.decision == "delegate"]
    assert (told.review, told.member, told.new_step) == ("_review-shop", "writer", "_delegated-shop")
    assert len(further) == 1 and "Write a menu card." in further[0] and "cook did shop" in further[0]
    assert "## _delegated-shop\nwriter did _delegated-shop" in record.output
    assert "_review-_delegated-shop" in (await store.results(job))  # its result was reviewed too


async def test_a_looping_manager_is_stopped_by_max_steps(
    nats_server: ManagedServer, redis_server: ManagedServer, nc: NATS, store: RedisJobStore
) -> None:
    again = {"role": "lead", "step": None, "replies": [decide("revise", feedback="Again.")]}
    with ScriptedServer(script(again)) as llm:
        job, events = await run_job(nats_server, redis_server, nc, store, llm)

    record = await store.get(job)
    assert record.status == "failed"
    assert "_review-_try3-shop" in record.reason
    assert "already has the 5 steps budgets.max_steps allows" in record.reason
    assert [d.new_step for d in decisions(events)] == ["_try2-shop", "_try3-shop"]
    assert record.plan is not None and "_try4-shop" not in {s.id for s in record.plan.steps}


async def test_a_manager_that_names_a_member_who_does_not_exist_fails_the_job_after_one_repair(
    nats_server: ManagedServer, redis_server: ManagedServer, nc: NATS, store: RedisJobStore
) -> None:
    ghost = decide("delegate", member="ghost", description="Haunt the party.", expected_output="Boo.")
    with ScriptedServer(script({"role": "lead", "step": "_review-shop", "replies": [ghost]})) as llm:
        job, events = await run_job(nats_server, redis_server, nc, store, llm)

    record = await store.get(job)
    assert record.status == "failed"
    assert "step '_review-shop' failed" in record.reason and "'ghost' is not one of" in record.reason
    repairs = [r for r in llm.requests() if r.step == "_review-shop"]
    assert len(repairs) == 2  # asked once, repaired once, then the step failed
    assert decisions(events) == []


async def test_a_coordinator_killed_mid_decision_does_not_apply_it_twice(
    nats_server: ManagedServer, redis_server: ManagedServer, nc: NATS, store: RedisJobStore
) -> None:
    slow = {"role": "lead", "step": "_review-shop",
            "replies": [{**decide("revise", feedback="Add tea."), "latency_s": 1.0}]}  # fmt: skip
    await register(store, CREW, "party.yaml")
    with ScriptedServer(script(slow)) as llm:
        stack = Stack(nats_server.url, redis_server.url, llm.url)
        try:
            first = stack.coordinator()
            for role in ("lead", "cook", "writer"):
                stack.worker("party", role)
            js = nc.jetstream()
            job = (await submit_job(js, store, "party", {})).id
            await wait_for_step_state(js, job, "_review-shop", TaskState.TASK_STATE_WORKING)
            first.kill()  # SIGKILL while the manager decides
            await wait_for_step_state(js, job, "_review-shop", TaskState.TASK_STATE_COMPLETED)
            stack.coordinator()  # two replacements race to apply the decision
            stack.coordinator()
            events = await job_events(js, job)
        finally:
            stack.stop_all()
        tries = [r for r in llm.requests() if r.step == "_try2-shop"]

    record = await store.get(job)
    assert (record.status, record.reason) == ("completed", "")
    assert record.plan is not None
    assert [s.id for s in record.plan.steps].count("_try2-shop") == 1
    assert [d.review for d in decisions(events)] == ["_review-shop", "_review-_try2-shop", "_review-invite"]
    assert len(tries) == 1  # the new attempt was dispatched and run once
