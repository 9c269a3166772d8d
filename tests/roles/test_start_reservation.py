"""A step's first LLM call reserves its tokens in the step's start (real Redis; a real worker and LLM at the end).

The start's script counts the shared memory's share of the prompt; the first
call's check takes the reservation without a round trip when it covers the
call, reserves the difference when it does not, and what no call took is
released with the step's end.
"""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from a2a.types import TaskState

from inference.errors import BudgetExceeded
from inference.results import Usage
from inference.testing.script import Script
from inference.testing.server import ScriptedServer
from roles.step.results import ResultStore, StepResult
from roles.step.start import read_start
from roles.step.usage import FirstCall, RedisUsage
from tests.roles.helpers import Workers, make_work, new_job, states

COMPLETED = TaskState.TASK_STATE_COMPLETED
MEMORY = {"note": "x" * 30}  # its share: (4 + 30 + 8) // 3 = 14 tokens
FIRST = FirstCall(tokens=500, memory_chars=1_000)


async def reserved(client: aioredis.Redis, budget: RedisUsage) -> int:
    return int(await client.get(budget.reserved_key) or 0)


async def scripts_run(client: aioredis.Redis) -> int:
    stats = await client.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("eval", "evalsha"))


async def started(client: aioredis.Redis, *, used: int = 0, limit: int = 10_000) -> tuple[RedisUsage, str]:
    work = make_work(new_job(), "draft")
    await client.hset(work.keys.memory, mapping=MEMORY)
    if used:
        await client.hset(work.keys.usage, "researcher:input_tokens", used)
    budget = RedisUsage(client, work.keys.usage, limit=limit, hold=True)
    await read_start(client, work, 1, budget=budget, first_call=FIRST)
    return budget, work.job


async def test_the_start_reserves_the_first_call_with_the_memorys_share(redis_client: aioredis.Redis) -> None:
    budget, _ = await started(redis_client)

    assert await reserved(redis_client, budget) == 500 + 14


async def test_a_first_call_the_start_covers_makes_no_round_trip_and_gives_the_rest_back(
    redis_client: aioredis.Redis,
) -> None:
    budget, job = await started(redis_client)
    before = await scripts_run(redis_client)

    await budget.check(job, "writer", reserve=400)

    assert await scripts_run(redis_client) == before
    assert await reserved(redis_client, budget) == 514
    await budget.record(job, "writer", Usage(input_tokens=30, output_tokens=20), reserved=400)
    await budget.flush()
    assert await reserved(redis_client, budget) == 0
    assert await budget.used_tokens() == 50


async def test_a_first_call_asking_more_than_the_start_reserved_reserves_the_difference(
    redis_client: aioredis.Redis,
) -> None:
    budget, job = await started(redis_client)

    await budget.check(job, "writer", reserve=600)

    assert await reserved(redis_client, budget) == 600
    await budget.release(job, "writer", 600)  # the call failed
    assert await reserved(redis_client, budget) == 0


async def test_a_refused_top_up_gives_back_what_the_start_reserved(redis_client: aioredis.Redis) -> None:
    budget, job = await started(redis_client, used=9_400)  # 9,400 + 514 < 10,000: the start is admitted
    await redis_client.incrby(budget.reserved_key, 100)  # another step's call now holds 100 more

    with pytest.raises(BudgetExceeded, match="has used 9400 of its 10000 tokens"):
        await budget.check(job, "writer", reserve=600)

    assert await reserved(redis_client, budget) == 100


async def test_a_start_over_the_budget_reserves_nothing_and_its_call_is_refused(
    redis_client: aioredis.Redis,
) -> None:
    budget, job = await started(redis_client, used=10_000)

    assert await reserved(redis_client, budget) == 0
    with pytest.raises(BudgetExceeded, match="has used 10000 of its 10000 tokens"):
        await budget.check(job, "writer", reserve=400)
    assert await reserved(redis_client, budget) == 0


async def test_a_reservation_no_call_took_is_released_by_the_steps_end(redis_client: aioredis.Redis) -> None:
    budget, _ = await started(redis_client)

    await budget.flush()  # a step that ends without a result

    assert await reserved(redis_client, budget) == 0


async def test_a_reservation_no_call_took_is_released_with_the_result(redis_client: aioredis.Redis) -> None:
    work = make_work(new_job(), "replayed")
    budget = RedisUsage(redis_client, work.keys.usage, limit=10_000, hold=True)
    await read_start(redis_client, work, 1, budget=budget, first_call=FIRST)
    assert await reserved(redis_client, budget) == 500

    results = ResultStore.of_step(redis_client, work)
    await results.record(work.step, StepResult(output="from the checkpoint", role="writer"), usage=budget)

    assert await reserved(redis_client, budget) == 0
    assert await budget.used_tokens() == 0


async def test_a_workers_steps_leave_no_reservation_behind(
    workers: Workers, llm: ScriptedServer, redis_client: aioredis.Redis
) -> None:
    llm.set_script(Script.model_validate({"rules": [{"role": "writer", "replies": ["Done."]}]}))
    await workers.start("writer")
    job = new_job()
    work = make_work(job, "first")
    await redis_client.hset(work.keys.memory, mapping=MEMORY)

    events = await workers.run_step(work)
    events += await workers.run_step(make_work(job, "second"))

    assert states(events).count(COMPLETED) == 2
    assert int(await redis_client.get(f"{work.keys.usage}:reserved") or 0) == 0
    assert int(await redis_client.hget(work.keys.usage, "writer:calls") or 0) == 2
