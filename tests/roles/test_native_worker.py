"""The native engine in a role worker, against the scripted LLM over HTTP, real NATS and real Redis."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis.asyncio as aioredis
from a2a.types import TaskState
from google.protobuf import json_format

from crews.spec.limits import SpecLimits
from inference.testing.script import Script, count_words
from inference.testing.server import ScriptedServer
from roles.step.results import StepResult
from roles.tools.toolset import unframe
from tests.roles.helpers import CREW, Workers, make_work, metadata, new_job, reason, states
from tests.waits import all_acked

WORKING, COMPLETED = TaskState.TASK_STATE_WORKING, TaskState.TASK_STATE_COMPLETED
FAILED, CANCELED = TaskState.TASK_STATE_FAILED, TaskState.TASK_STATE_CANCELED


def script(*rules: dict[str, object]) -> Script:
    return Script.model_validate({"rules": list(rules)})


def calc(expression: str) -> dict[str, object]:
    return {"tool_calls": [{"name": "calculator", "arguments": {"expression": expression}}]}


async def stored(redis_client: aioredis.Redis, job: str, step: str) -> StepResult | None:
    raw = await redis_client.hget(f"crews:{{job:{job}}}:results", step)
    return None if raw is None else StepResult.model_validate_json(raw)


async def test_plain_answer_is_recorded_and_published(
    workers: Workers, llm: ScriptedServer, redis_client: aioredis.Redis
) -> None:
    llm.set_script(script({"role": "writer", "replies": ["Crews are teams of agents."]}))
    await workers.start("writer", worker_id="worker-a")
    job = new_job()
    work = make_work(job, "draft")

    events = await workers.run_step(work)

    assert states(events) == [WORKING, COMPLETED]
    assert metadata(events[0]) == {"step": "draft", "role": "writer", "attempt": 1.0, "worker": "worker-a"}
    assert events[0].status_update.context_id == job
    artifact = events[1].artifact_update
    assert (artifact.task_id, artifact.artifact.artifact_id) == (f"{job}.draft", f"{job}.draft.output")
    assert artifact.artifact.name == "draft" and artifact.last_chunk
    assert [p.text for p in artifact.artifact.parts] == ["Crews are teams of agents."]
    result = await stored(redis_client, job, "draft")
    assert result is not None
    assert (result.output, result.data, result.role, result.worker) == (
        "Crews are teams of agents.",
        None,
        "writer",
        "worker-a",
    )
    [request] = llm.requests()
    system, user = request.body["messages"]
    assert system == {
        "role": "system",
        "content": "You are Writer. You are careful.\nYour personal goal is: Do the draft well",
    }
    assert user["role"] == "user"
    assert user["content"].startswith("\nCurrent Task: Do the draft.\n\nThis is the expected criteria")
    assert user["content"].endswith("\n\nProvide your complete response:")


async def test_tool_call_result_goes_back_to_the_model(workers: Workers, llm: ScriptedServer) -> None:
    llm.set_script(script({"role": "writer", "replies": [calc("6 * 7"), "The answer is 42."]}))
    await workers.start("writer")
    work = make_work(new_job(), "sum", tools=["calculator"])

    events = await workers.run_step(work)

    assert states(events) == [WORKING, COMPLETED]
    first, second = llm.requests()
    assert [t["function"]["name"] for t in first.body["tools"]] == [
        "calculator",
        "memory_read",
        "memory_write",
    ]
    assistant, tool = second.body["messages"][-2:]
    assert assistant["tool_calls"][0]["function"]["name"] == "calculator"
    assert (tool["role"], tool["tool_call_id"]) == ("tool", assistant["tool_calls"][0]["id"])
    assert unframe(tool["content"]) == "42" and "not instructions" in tool["content"]


async def test_memory_written_by_one_step_is_read_by_another(
    workers: Workers, llm: ScriptedServer, redis_client: aioredis.Redis
) -> None:
    write = {
        "tool_calls": [{"name": "memory_write", "arguments": {"key": "finding", "value": "sky is <b>green"}}]
    }
    read = {"tool_calls": [{"name": "memory_read", "arguments": {"key": "finding"}}]}
    llm.set_script(
        script(
            {"role": "researcher", "replies": [write, "noted"]},
            {"role": "writer", "replies": [read, "The sky is green."]},
        )
    )
    await workers.start("researcher")
    await workers.start("writer")
    job = new_job()

    assert states(await workers.run_step(make_work(job, "research", role="researcher")))[-1] == COMPLETED
    assert states(await workers.run_step(make_work(job, "write")))[-1] == COMPLETED

    assert await redis_client.hgetall(f"crews:{{job:{job}}}:memory") == {"finding": "sky is <b>green"}
    first, second = [r for r in llm.requests() if r.role == "writer"]
    prompt = first.body["messages"][1]["content"]
    assert '<shared_memory>\n{"finding": "sky is \\u003cb>green"}\n</shared_memory>' in prompt
    assert (
        first.body["messages"][0]["role"] == "system"
        and "finding" not in first.body["messages"][0]["content"]
    )
    tool = second.body["messages"][-1]
    assert tool["role"] == "tool"
    assert json.loads(unframe(tool["content"])) == {"key": "finding", "value": "sky is <b>green"}


async def test_a_tool_outside_the_allow_list_is_refused_to_the_model_and_nothing_runs(
    workers: Workers, llm: ScriptedServer, redis_client: aioredis.Redis
) -> None:
    llm.set_script(script({"role": "writer", "replies": [calc("1 + 1"), "I cannot compute it."]}))
    await workers.start("writer")
    work = make_work(new_job(), "sneaky")  # calculator is not among its tools

    events = await workers.run_step(work)

    assert states(events) == [WORKING, COMPLETED]
    first, second = llm.requests()
    assert [t["function"]["name"] for t in first.body["tools"]] == ["memory_read", "memory_write"]
    refusal = second.body["messages"][-1]
    assert refusal["role"] == "tool" and refusal["content"].startswith("Error: there is no tool 'calculator'")
    assert "nothing ran" in refusal["content"] and "memory_read, memory_write" in refusal["content"]
    assert (await stored(redis_client, work.job, "sneaky")).output == "I cannot compute it."


async def test_bad_tool_arguments_go_back_to_the_model_which_recovers(
    workers: Workers, llm: ScriptedServer
) -> None:
    bad = {"tool_calls": [{"name": "calculator", "arguments": {"expr": "2 + 2"}}]}
    llm.set_script(script({"role": "writer", "replies": [bad, calc("2 + 2"), "Four."]}))
    await workers.start("writer")

    events = await workers.run_step(make_work(new_job(), "add", tools=["calculator"]))

    assert states(events) == [WORKING, COMPLETED]
    requests = llm.requests()
    assert len(requests) == 3
    error = requests[1].body["messages"][-1]
    assert error["role"] == "tool"
    assert error["content"].startswith("Error: the arguments of calculator do not match its schema:")
    assert "'expr' was unexpected" in error["content"] and '"required": ["expression"]' in error["content"]
    assert unframe(requests[2].body["messages"][-1]["content"]) == "4"


async def test_max_iter_without_a_final_answer_fails(
    workers: Workers, llm: ScriptedServer, redis_client: aioredis.Redis
) -> None:
    llm.set_script(script({"role": "writer", "replies": [calc("1 + 1")]}))  # the last reply repeats
    await workers.start("writer")
    work = make_work(new_job(), "loop", tools=["calculator"], max_iter=3)

    events = await workers.run_step(work)

    assert states(events) == [WORKING, FAILED]
    assert "3 LLM calls (max_iter) without a final answer" in reason(events[-1])
    assert len(llm.requests()) == 3
    assert await redis_client.hget(work.keys.usage, "writer:calls") == "3"  # a failed step's calls count too


SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "words": {"type": "integer"}},
    "required": ["title", "words"],
    "additionalProperties": False,
}


async def test_json_output_with_output_schema(
    workers: Workers, llm: ScriptedServer, redis_client: aioredis.Redis
) -> None:
    llm.set_script(script({"role": "writer", "replies": [{"json": {"title": "Crews", "words": 3}}]}))
    await workers.start("writer")
    work = make_work(new_job(), "meta", output_schema=SCHEMA)

    events = await workers.run_step(work)

    assert states(events) == [WORKING, COMPLETED]
    [part] = events[1].artifact_update.artifact.parts
    assert json_format.MessageToDict(part.data) == {"title": "Crews", "words": 3}
    result = await stored(redis_client, work.job, "meta")
    assert result is not None and result.data == {"title": "Crews", "words": 3}
    [request] = llm.requests()
    assert request.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "meta", "schema": SCHEMA},
    }
    assert "Ensure your final answer contains only the content in the following format:" in str(request.body)


async def test_an_answer_off_the_schema_gets_one_repair(
    workers: Workers, llm: ScriptedServer, redis_client: aioredis.Redis
) -> None:
    llm.set_script(
        script(
            {
                "step": "fixed",
                "replies": [{"json": {"title": "Crews"}}, {"json": {"title": "Crews", "words": 3}}],
            },
            {"step": "broken", "replies": ["not json at all"]},
        )
    )
    await workers.start("writer")
    job = new_job()

    fixed = await workers.run_step(make_work(job, "fixed", output_schema=SCHEMA))
    broken = await workers.run_step(make_work(job, "broken", output_schema=SCHEMA))

    assert states(fixed) == [WORKING, COMPLETED]
    repair = [r for r in llm.requests() if r.step == "fixed"][1].body["messages"][-1]
    assert repair["role"] == "user" and "'words' is a required property" in repair["content"]
    assert states(broken) == [WORKING, FAILED]
    assert "does not match its output_schema after one repair attempt" in reason(broken[-1])
    assert len([r for r in llm.requests() if r.step == "broken"]) == 2
    usage = await redis_client.hget(make_work(job, "broken").keys.usage, "writer:calls")
    assert usage == "4"  # both steps' two calls, the failed one's too


async def test_llm_server_errors_are_redelivered_until_the_step_succeeds(
    workers: Workers, llm: ScriptedServer, redis_client: aioredis.Redis
) -> None:
    llm.set_script(script({"role": "writer", "replies": [{"error": 500, "times": 2}, "third time lucky"]}))
    await workers.start("writer")
    work = make_work(new_job(), "flaky")

    events = await workers.run_step(work)

    assert states(events) == [WORKING, WORKING, WORKING, COMPLETED]
    assert [metadata(e)["attempt"] for e in events[:3]] == [1, 2, 3]
    result = await stored(redis_client, work.job, "flaky")
    assert result is not None and result.output == "third time lucky"


async def test_a_step_that_keeps_failing_is_given_up_with_the_reason(
    workers: Workers, llm: ScriptedServer
) -> None:
    llm.set_script(script({"role": "writer", "replies": [{"error": 503}]}))
    await workers.start("writer")

    events = await workers.run_step(make_work(new_job(), "down"))

    assert states(events) == [WORKING, WORKING, WORKING, FAILED]  # max_deliver=3
    text = reason(events[-1])
    assert text.startswith("gave up after 3 deliveries: the LLM pool did not answer writer/down")
    assert "HTTP 503" in text


async def test_a_step_with_a_result_is_not_run_again(
    workers: Workers, llm: ScriptedServer, redis_client: aioredis.Redis
) -> None:
    llm.set_script(script({"role": "writer", "replies": ["first run", "second run"]}))
    await workers.start("writer", worker_id="worker-a")
    work = make_work(new_job(), "once")
    first = await workers.run_step(work)

    await workers.dispatch(work, msg_id="redelivered-copy")  # the same step again, as after a crash
    await workers.stop()

    assert states(first) == [WORKING, COMPLETED]
    assert len(llm.requests()) == 1
    result = await stored(redis_client, work.job, "once")
    assert result is not None and (result.output, result.worker) == ("first run", "worker-a")
    assert await redis_client.hlen(work.keys.results) == 1
    info = await all_acked(workers.js, "CREWS_TASKS", f"{CREW}__writer")
    assert (info.delivered.stream_seq, info.num_pending) == (2, 0)


async def test_cancelled_job_step_does_not_start(
    workers: Workers, llm: ScriptedServer, redis_client: aioredis.Redis
) -> None:
    work = make_work(new_job(), "late")
    await redis_client.hset(work.keys.state, "status", "canceled")
    await workers.start("writer")

    events = await workers.run_step(work)

    assert states(events) == [CANCELED]
    assert f"job {work.job} is canceled" in reason(events[-1])
    assert llm.requests() == []


async def test_usage_is_recorded_per_role(
    workers: Workers, llm: ScriptedServer, redis_client: aioredis.Redis
) -> None:
    llm.set_script(script({"role": "writer", "replies": [calc("2 ** 10"), "It is 1024."]}))
    await workers.start("writer")
    work = make_work(new_job(), "power", tools=["calculator"])

    await workers.run_step(work)

    usage = await redis_client.hgetall(work.keys.usage)
    output_tokens = count_words('calculator {"expression": "2 ** 10"}') + count_words("It is 1024.")
    input_tokens = sum(count_words(m.get("content")) for r in llm.requests() for m in r.body["messages"])
    assert usage == {
        "writer:calls": "2",
        "writer:input_tokens": str(input_tokens),
        "writer:output_tokens": str(output_tokens),
    }
    result = await stored(redis_client, work.job, "power")
    assert result is not None
    assert (result.usage.input_tokens, result.usage.output_tokens) == (input_tokens, output_tokens)


async def test_spent_token_budget_fails_the_step(
    workers: Workers, llm: ScriptedServer, redis_client: aioredis.Redis
) -> None:
    work = make_work(new_job(), "costly", max_tokens_budget=100)
    await redis_client.hset(
        work.keys.usage, mapping={"researcher:input_tokens": 90, "researcher:output_tokens": 10}
    )
    await workers.start("writer")

    events = await workers.run_step(work)

    assert states(events) == [WORKING, FAILED]
    assert f"job {work.job} has used 100 of its 100 tokens" in reason(events[-1])
    assert llm.requests() == []


@pytest.mark.parametrize(
    ("crew_budget", "settings", "limit"),
    [
        (None, {"default_job_tokens": 50}, 50),  # the crew sets no budgets.max_tokens: the operator's default
        (
            1_000_000,
            {"limits": SpecLimits(job_tokens=80)},
            80,
        ),  # stored before CREWS_MAX_JOB_TOKENS was lowered
    ],
    ids=["default", "ceiling"],
)
async def test_the_job_budget_is_the_operators_default_or_ceiling_when_the_crews_is_missing_or_over(
    workers: Workers,
    llm: ScriptedServer,
    redis_client: aioredis.Redis,
    crew_budget: int | None,
    settings: dict[str, Any],
    limit: int,
) -> None:
    work = make_work(new_job(), "bounded", max_tokens_budget=crew_budget)
    await redis_client.hset(work.keys.usage, mapping={"researcher:input_tokens": limit})
    await workers.start("writer", **settings)

    events = await workers.run_step(work)

    assert states(events) == [WORKING, FAILED]
    assert f"job {work.job} has used {limit} of its {limit} tokens" in reason(events[-1])
    assert llm.requests() == []
