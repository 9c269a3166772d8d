"""The benchmarks' crew (three roles, three sequential steps), and submitting and following its jobs.

Jobs are followed through the job store, not the events stream: a running job
is a member of the deadlines sorted set until it ends, so one ``ZMSCORE``
tells how many of a batch are still running, at no cost to the processes
being measured. Start and end times are the ones the system records itself
(``created_at`` at submit, ``finished_at`` when the coordinator ends the job).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass

from nats.js import JetStreamContext

from crews.jobs.control import submit_job
from crews.jobs.store import DEADLINES, RedisJobStore, job_keys
from crews.spec.load import load_crew_text

ROLES = ("researcher", "writer", "reviewer")
STEPS_PER_JOB = 3

CREW_YAML = """
name: {name}
roles:
  researcher: {{role: Researcher, goal: "Find facts about {{topic}}", backstory: You dig up facts.}}
  writer: {{role: Writer, goal: "Write about {{topic}}", backstory: You write clearly.}}
  reviewer: {{role: Reviewer, goal: Check the article, backstory: You check every claim.}}
tasks:
  research: {{description: "Research {{topic}}.", expected_output: Three facts., agent: researcher}}
  write: {{description: Write a paragraph from the facts., expected_output: One paragraph., agent: writer}}
  review: {{description: Review the paragraph., expected_output: The final text., agent: reviewer}}
inputs:
  topic: {{type: string}}
"""
INPUTS = {"topic": "honey bees"}


async def register(store: RedisJobStore, name: str) -> str:
    """Save the benchmark crew under ``name`` (as ``crews run`` / ``POST /crews`` do)."""
    spec = load_crew_text(CREW_YAML.format(name=name), f"{name}.yaml")
    await store.save_crew(spec)
    return spec.name


async def submit_many(js: JetStreamContext, store: RedisJobStore, crew: str, n: int) -> list[str]:
    """Submit ``n`` jobs, 32 at a time; their ids in submission order."""
    slots = asyncio.Semaphore(32)

    async def one() -> str:
        async with slots:
            return (await submit_job(js, store, crew, INPUTS)).id

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def running(store: RedisJobStore, jobs: list[str]) -> int:
    """How many of ``jobs`` have not ended yet."""
    if not jobs:
        return 0
    scores = await store.redis.zmscore(DEADLINES, jobs)
    return sum(score is not None for score in scores)


async def wait_ended(store: RedisJobStore, jobs: list[str], timeout_s: float, poll_s: float = 0.02) -> int:
    """Wait until every job has ended or ``timeout_s`` passed; returns how many are still running."""
    deadline = time.monotonic() + timeout_s
    left = await running(store, jobs)
    while left and time.monotonic() < deadline:
        await asyncio.sleep(poll_s)
        left = await running(store, jobs)
    return left


@dataclass(frozen=True)
class Outcome:
    """What became of a batch of jobs, with the times the system recorded."""

    statuses: Counter[str]
    created: list[float]
    finished: list[float]

    @property
    def completed(self) -> int:
        return self.statuses.get("completed", 0)

    def durations(self) -> list[float]:
        return [end - start for start, end in zip(self.created, self.finished, strict=True)]


async def outcome(store: RedisJobStore, jobs: list[str]) -> Outcome:
    """Status and recorded times of every job (completed jobs only have a ``finished_at`` that counts)."""
    async with store.redis.pipeline(transaction=False) as pipe:
        for job in jobs:
            pipe.hmget(job_keys(job).state, ["status", "created_at", "finished_at"])
        rows = await pipe.execute()
    statuses: Counter[str] = Counter(row[0] or "missing" for row in rows)
    done = [row for row in rows if row[0] == "completed"]
    return Outcome(statuses, [float(r[1]) for r in done], [float(r[2]) for r in done])
