"""Quality scores across processes: a task's evals are scored after its step, the judge through the pool.

The scripted LLM answers the step and, as the judge, grades it; the scores
are recorded with the result and shown by the job; ``eval_policy: fail``
fails the job on a failed eval, ``flag`` only records it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from nats.aio.client import Client as NATS

from crews.jobs.control import submit_job
from crews.jobs.store import RedisJobStore
from inference.testing.script import Script
from inference.testing.server import ScriptedServer
from tests.e2e.stack import Stack, job_events, register

CREW = """
name: graded
eval_policy: POLICY
roles:
  writer: {role: Writer, goal: Write about bees}
tasks:
  note:
    description: Write one line about bees.
    expected_output: One line.
    agent: writer
    evals:
      - {type: contains, text: bees}
      - {type: must_not_contain, text: "As an AI"}
      - {type: judge, name: on_topic, rubric: "Is it about bees?", threshold: 0.8}
"""


@pytest.fixture
def llm() -> Iterator[ScriptedServer]:
    script = {
        "rules": [
            {
                "role": "writer",
                "step": "note:eval:on_topic",
                "replies": [{"json": {"score": 0.6, "reason": "vague"}}],
            },
            {
                "role": "writer",
                "step": "note",
                "replies": [{"text": "honey bees dance to share where food is"}],
            },
        ]
    }
    with ScriptedServer(Script.model_validate(script)) as server:
        yield server


@pytest.mark.parametrize("policy", ["flag", "fail"])
async def test_evals_are_scored_recorded_and_applied_by_the_crews_policy(
    policy: str, llm: ScriptedServer, stack: Stack, nc: NATS, store: RedisJobStore
) -> None:
    await register(store, CREW.replace("POLICY", policy), "graded.yaml")
    stack.coordinator()
    stack.worker("graded", "writer")
    js = nc.jetstream()
    job = (await submit_job(js, store, "graded", {})).id
    await job_events(js, job)

    result = (await store.results(job))["note"]
    scores = {score.name: (score.score, score.passed) for score in result.evals}
    assert scores == {"contains": (1.0, True), "must_not_contain": (1.0, True), "on_topic": (0.6, False)}
    assert [r.step for r in llm.requests()] == ["note", "note:eval:on_topic"]
    assert "honey bees dance" in str(llm.requests()[1].body["messages"])  # the judge saw the answer
    usage = (await store.usage(job))["writer"]
    assert usage.calls == 2  # the judge's call is counted like any other
    record = await store.get(job)
    if policy == "flag":
        assert record.status == "completed"
    else:
        assert record.status == "failed"
        assert "failed its eval 'on_topic' (score 0.6): vague" in record.reason
