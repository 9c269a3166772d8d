"""What crosses the bus: the formats ``roles`` writes are exactly the ones ``crews`` reads (real Redis).

Each test writes with the role side's own code and reads with the crews side's
own code, so a format that drifts on one side fails here.
"""

from __future__ import annotations

import json

import pytest
import redis.asyncio as aioredis
from a2a.types import SendMessageRequest

from bus import subjects
from bus.contracts.codec import decode, encode
from bus.contracts.keys import StepKeys, crew_key
from bus.contracts.result import StepResult, TokenUsage
from bus.contracts.step import STEP_MEDIA_TYPE, from_request, request_json, to_request, work_from_json
from crews.jobs.store import RedisJobStore
from crews.plan.planner import plan
from crews.plan.step_work import plan_step_work
from crews.spec.load import load_crew_text
from inference.results import Usage
from roles.step.results import ResultStore
from roles.step.usage import RedisUsage

CREW = """
name: contract
budgets: {max_tokens: 5000}
roles:
  clerk:
    role: Clerk
    goal: Add up
    tools: [{name: calculator, approval: required}, memory_read]
    llm: {model: m, temperature: 0.2, seed: 7}
tasks:
  bill: {description: "Add {a} and 3.", expected_output: The sum., agent: clerk}
inputs: {a: {type: integer}}
"""


async def test_a_result_a_role_records_is_the_result_the_job_store_reads(
    redis_client: aioredis.Redis,
) -> None:
    keys = StepKeys.for_job("j1")
    written = StepResult(
        output="5", data={"sum": 5}, role="clerk", worker="w1", usage=TokenUsage(input_tokens=3)
    )
    stored, ours = await ResultStore(redis_client, keys.results).record("bill", written)
    assert ours and stored == written
    assert (await RedisJobStore(redis_client).results("j1")) == {"bill": written}


async def test_usage_a_role_adds_is_the_usage_the_job_store_reads(redis_client: aioredis.Redis) -> None:
    usage = RedisUsage(redis_client, StepKeys.for_job("j2").usage, limit=100)
    await usage.record("j2", "clerk", Usage(input_tokens=10, output_tokens=4, cost_usd=0.25))
    await usage.record("j2", "clerk", Usage(input_tokens=1, output_tokens=1))
    await usage.record("j2", "writer", Usage(input_tokens=2, output_tokens=0))
    read = await RedisJobStore(redis_client).usage("j2")
    assert {role: u.model_dump() for role, u in read.items()} == {
        "clerk": {"input_tokens": 11, "output_tokens": 5, "calls": 2, "cost_usd": 0.25},
        "writer": {"input_tokens": 2, "output_tokens": 0, "calls": 1, "cost_usd": 0.0},
    }
    assert await usage.used() == (18, 0.25)


async def test_a_crew_the_store_registers_is_where_a_role_agent_reads_it(
    redis_client: aioredis.Redis,
) -> None:
    spec = load_crew_text(CREW, "contract.yaml")
    await RedisJobStore(redis_client).save_crew(spec)
    assert await redis_client.get(crew_key("contract")) is not None


def test_a_planned_step_reaches_the_worker_with_every_gate_of_its_role() -> None:
    spec = load_crew_text(CREW, "contract.yaml")
    job_plan = plan(spec, {"a": 2})
    work = plan_step_work("j3", spec, job_plan, job_plan.steps[0], {})
    received = work_from_json(request_json(work))  # as the coordinator sends it and the worker reads it
    assert received == work
    assert received.approval_tools == ["calculator"]
    assert received.tools == ["calculator", "memory_read"]
    assert received.max_tokens_budget == 5000
    assert (received.llm.model, received.llm.temperature, received.llm.seed) == ("m", 0.2, 7)
    assert received.keys == StepKeys.for_job("j3")
    assert "Add 2 and 3." in received.description


def test_an_events_subject_names_its_job_and_publisher_and_only_known_shapes_count() -> None:
    source = subjects.EventSource("j1", "digest", "writer")
    assert subjects.event_source(subjects.role_events_subject("j1", "digest", "writer")) == source
    assert subjects.event_source(subjects.role_events_subject("j1", "digest", "writer", "artifact")) == source
    assert subjects.event_source(subjects.job_events_subject("j1")) == subjects.EventSource("j1")
    assert subjects.event_source("crews.events.j1.digest.writer.forged") is None  # a role may publish it
    assert subjects.event_source("crews.events.j1.digest.writer") is None  # the shape before kinds


def test_a_step_request_on_the_wire_is_the_a2a_requests_json_mapping_both_ways() -> None:
    """The fast writer and reader of a step request agree with the A2A type's own JSON mapping."""
    spec = load_crew_text(CREW, "contract.yaml")
    job_plan = plan(spec, {"a": 2})
    earlier = {"first": StepResult(output="caf\u00e9 \U0001f41d " + "x" * 300)}  # not ASCII, long
    for step in job_plan.steps:
        work = plan_step_work("j4", spec, job_plan, step, earlier)
        assert decode(request_json(work), SendMessageRequest) == to_request(work)
        assert work_from_json(encode(to_request(work))) == work == from_request(to_request(work))
        assert json.loads(request_json(work)) == json.loads(encode(to_request(work)))


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[]",
        b'{"message": {"parts": [{"text": "no step part"}]}}',
        b'{"message": {"parts": [{"mediaType": "%s", "data": "a string"}]}}' % STEP_MEDIA_TYPE.encode(),
        b'{"message": {"parts": [{"mediaType": "%s", "data": {}}]}}' % STEP_MEDIA_TYPE.encode(),
        b'{"message": {"parts": [{"mediaType": "%s", "data": {}}], "smuggled": 1}}'
        % STEP_MEDIA_TYPE.encode(),
    ],
)
def test_what_is_not_a_step_request_is_refused_with_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        work_from_json(data)
