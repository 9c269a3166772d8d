"""What a step's checkpoint writes, and when (real Redis, real worker, scripted LLM over HTTP).

An answer that ends the loop is held for the step's result instead of being
written to the turns hash; anything that comes after it and costs money (a
judge, another LLM call) finds it recorded first.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from a2a.types import TaskState

from bus.contracts.evals import EvalSpec
from bus.contracts.keys import StepKeys
from inference.results import ChatResult, ToolCall, Usage
from inference.testing.script import Script
from inference.testing.server import ScriptedServer
from roles.step.checkpoint import StepCheckpoint
from tests.roles.helpers import Workers, make_work, new_job, states, step_events

PROMPT = [{"role": "system", "content": "You are careful."}, {"role": "user", "content": "Do it."}]


def answer(text: str) -> ChatResult:
    return ChatResult(
        content=text, usage=Usage(input_tokens=3, output_tokens=2), model="m", endpoint="http://llm"
    )


def tool_answer() -> ChatResult:
    return ChatResult(tool_calls=[ToolCall(id="c1", name="lookup")], model="m", endpoint="http://llm")


def turns_key() -> str:
    return StepKeys.for_job(new_job()).turns


async def fields(client: aioredis.Redis, key: str) -> list[str]:
    return sorted(await client.hkeys(key))


async def test_a_final_answer_is_held_and_leaves_nothing_to_clear(redis_client: aioredis.Redis) -> None:
    key = turns_key()
    checkpoint = StepCheckpoint(redis_client, key, "j", "a", {})
    messages = await checkpoint.prompt(list(PROMPT))

    async def ask() -> ChatResult:
        return answer("done")

    result, replayed = await checkpoint.answer(1, ask, final=lambda r: not r.tool_calls)
    assert (result.content, replayed, messages) == ("done", False, PROMPT)
    assert await fields(redis_client, key) == []  # the step's result records it
    assert checkpoint.clearing() == (None, "")  # nothing for the result's script to remove


async def test_an_answer_asking_for_tools_is_written_with_the_prompt(redis_client: aioredis.Redis) -> None:
    key = turns_key()
    checkpoint = StepCheckpoint(redis_client, key, "j", "a", {})
    messages = await checkpoint.prompt(list(PROMPT))
    messages.append({"role": "assistant", "content": "later turns are not the prompt"})

    async def ask() -> ChatResult:
        return tool_answer()

    result, _ = await checkpoint.answer(1, ask, final=lambda r: not r.tool_calls)
    assert result.tool_calls[0].name == "lookup"
    assert await fields(redis_client, key) == ["a:llm:1", "a:prompt"]
    resumed = StepCheckpoint.of_hash(redis_client, key, "j", "a", await redis_client.hgetall(key))
    assert await resumed.prompt([]) == PROMPT  # the first messages, not what was appended after
    assert resumed.clearing() == (key, "a:")


async def test_a_held_answer_is_recorded_before_the_next_call_is_paid_for(
    redis_client: aioredis.Redis,
) -> None:
    key = turns_key()
    checkpoint = StepCheckpoint(redis_client, key, "j", "a", {})
    await checkpoint.prompt(list(PROMPT))

    async def first() -> ChatResult:
        return answer("looks final")

    await checkpoint.answer(1, first, final=lambda _: True)
    seen_at_second_call: list[str] = []

    async def second() -> ChatResult:
        seen_at_second_call.extend(await fields(redis_client, key))
        return answer("the real one")

    await checkpoint.answer(2, second, final=lambda _: True)
    assert seen_at_second_call == ["a:llm:1", "a:prompt"]
    await checkpoint.flush()
    assert await fields(redis_client, key) == ["a:llm:1", "a:llm:2", "a:prompt"]
    assert checkpoint.clearing() == (key, "a:")


async def test_a_judged_step_records_its_answer_before_the_judge_is_asked(
    workers: Workers, llm: ScriptedServer, redis_client: aioredis.Redis
) -> None:
    job = new_job()
    keys = StepKeys.for_job(job)
    judge = EvalSpec.model_validate({"type": "judge", "name": "on_topic", "rubric": "About bees?"})
    work = make_work(job, "note", keys=keys, evals=[judge])
    await redis_client.hset(keys.state, "status", "running")
    slow_judge = {"json": {"score": 1.0, "reason": "ok"}, "latency_s": 1}
    rules = [
        {"step": "note:eval:on_topic", "replies": [slow_judge]},
        {"step": "note", "replies": [{"text": "honey bees dance"}]},
    ]
    llm.set_script(Script.model_validate({"rules": rules}))
    await workers.start()
    await workers.dispatch(work)
    await llm.wait_for_requests(2)  # the judge is being asked
    assert await fields(redis_client, keys.turns) == ["note:llm:1", "note:prompt"]
    events = await step_events(workers.js, work)
    assert states(events)[-1] == TaskState.TASK_STATE_COMPLETED
    assert await fields(redis_client, keys.turns) == []  # removed with the result
