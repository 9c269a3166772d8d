"""The figures of a chaos run, read from what it left: the job store, the ledger and the workers' logs.

- a job is *lost* when the store no longer knows it, *stuck* when it had not
  ended when the run's time was up;
- a ledger job must complete, a deadline job must fail with "timed out after
  <its own timeout_s> s", a doomed job must fail with its step's dead-letter
  reason ("gave up after N deliveries"); anything else is an *unexpected end*;
- a *double result* is a step that more than one delivery recorded as its own
  (the worker logs ``step <s> of job <j> (<role>): completed`` only when its
  write-once ``HSETNX`` won); a paused worker that finishes a step another
  worker finished meanwhile is how a run provokes one;
- a *double side effect* is a ledger entry applied twice; a *repeated tool
  call* is an invocation whose idempotency key had been seen (the effect was
  not applied again); an *unstable key* is a call whose key is not the
  ``<job>:<step>:<turn>:<call>`` of its place in the conversation; a *missing
  side effect* is an entry a completed job should have left and did not.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field

from crews.jobs.store import JobRecord, RedisJobStore
from tests.chaos.ledger import LedgerLine
from tests.chaos.scenario import JobKind, expected_entries, key_of

COMPLETED_LINE = re.compile(r"step (\S+) of job (\S+) \(\S+\): completed")


@dataclass
class Tracked:
    """A job the run submitted."""

    id: str
    kind: JobKind
    timeout_s: float | None
    record: JobRecord | None = None  # the last state read; terminal once it ended


class ChaosReport(BaseModel):
    """What a chaos run did and what it found."""

    seed: int
    duration_s: float
    planned: int
    submitted: int
    completed: int
    failed: int
    stuck: int
    lost: int
    unexpected_ends: list[str] = Field(description="job: what it ended as, for jobs that ended otherwise")
    kills: dict[str, int]
    exits_on_their_own: dict[str, int]
    outages_not_seen: int = Field(description="server outages a coordinator did not notice in time")
    steps_reexecuted: int = Field(description="steps delivered more than once (attempts > 1)")
    turns_resumed: int = Field(description="LLM turns replayed from a checkpoint (StepResult.resumed_turns)")
    tool_calls: int
    repeated_tool_calls: int
    double_results: int
    double_side_effects: int
    missing_side_effects: int
    unstable_keys: int
    deadline_jobs: int
    deadlines_missed: int
    deadlines_in_redis_outage: int = Field(
        description="deadline jobs whose deadline fell while Redis was down"
    )
    latest_timeout_s: float = Field(description="longest a deadline job ended after its deadline")
    dead_letter_jobs: int
    dead_letters_failed_right: int

    def problems(self) -> list[str]:
        """What the run found wrong (empty: every job ended as it must, nothing twice, nothing missing)."""
        found = {
            "jobs not submitted": self.planned - self.submitted,
            "jobs lost": self.lost,
            "jobs stuck": self.stuck,
            "unexpected ends": len(self.unexpected_ends),
            "double results": self.double_results,
            "double side effects": self.double_side_effects,
            "missing side effects": self.missing_side_effects,
            "unstable idempotency keys": self.unstable_keys,
            "deadlines missed": self.deadlines_missed,
        }
        return [f"{name}: {n}" for name, n in found.items() if n]

    def lines(self) -> list[str]:
        kills = ", ".join(f"{kind} {n}" for kind, n in sorted(self.kills.items()))
        exits = ", ".join(f"{k} {n}" for k, n in sorted(self.exits_on_their_own.items())) or "none"
        return [
            f"chaos run, seed {self.seed}: {self.duration_s:.0f} s",
            f"jobs planned / submitted / completed / failed / stuck / lost: "
            f"{self.planned} / {self.submitted} / {self.completed} / {self.failed} / {self.stuck} / {self.lost}",
            f"kills: {kills} (processes that died on their own: {exits}; outages not seen: {self.outages_not_seen})",
            f"steps re-executed (attempts > 1): {self.steps_reexecuted}; turns resumed: {self.turns_resumed}",
            f"tool calls: {self.tool_calls}; repeated (deduplicated by key): {self.repeated_tool_calls}",
            f"double results: {self.double_results}; double side effects: {self.double_side_effects}; "
            f"missing side effects: {self.missing_side_effects}; unstable keys: {self.unstable_keys}",
            f"deadlines: {self.deadline_jobs} jobs, {self.deadlines_missed} missed, "
            f"{self.deadlines_in_redis_outage} fell in a Redis outage, "
            f"latest {self.latest_timeout_s:.1f} s after the deadline",
            f"dead-letter path: {self.dead_letters_failed_right} of {self.dead_letter_jobs} jobs failed "
            "with the dead-letter reason",
            f"unexpected ends: {len(self.unexpected_ends)}"
            + "".join(f"\n  {u}" for u in self.unexpected_ends),
        ]


def expected_end(job: Tracked) -> str | None:
    """Why ``job`` ended otherwise than it must (None: as it must)."""
    record = job.record
    if record is None or not record.terminal:
        return None  # stuck or lost: counted as such
    if job.kind == "ledger":
        ok = record.status == "completed"
    elif job.kind == "deadline":
        ok = (record.status, record.reason) == ("failed", f"timed out after {job.timeout_s:g} s")
    else:
        ok = record.status == "failed" and "gave up after" in record.reason
    return None if ok else f"{job.id} ({job.kind}): {record.status} {record.reason!r}"


def double_results(logs: list[Path]) -> int:
    recorded: Counter[tuple[str, str]] = Counter()
    for log in logs:
        for match in COMPLETED_LINE.finditer(log.read_text(errors="replace")):
            recorded[(match.group(2), match.group(1))] += 1
    return sum(1 for n in recorded.values() if n > 1)


def side_effects(jobs: list[Tracked], lines: list[LedgerLine]) -> tuple[int, int]:
    """(entries a completed ledger job should have left and did not, calls whose key is not their place's)."""
    applied = {line.entry for line in lines if line.applied}
    completed = [
        j for j in jobs if j.kind == "ledger" and j.record is not None and j.record.status == "completed"
    ]
    missing = sum(1 for job in completed for entry in expected_entries(job.id) if entry not in applied)
    unstable = sum(1 for line in lines if line.key != key_of(line.entry))
    return missing, unstable


async def step_figures(store: RedisJobStore, jobs: list[Tracked]) -> tuple[int, int]:
    """(steps delivered more than once, turns resumed from checkpoints) over the jobs that ended."""
    reexecuted = resumed = 0
    for job in jobs:
        if job.record is None:
            continue
        reexecuted += sum(1 for n in job.record.attempts.values() if n > 1)
        resumed += sum(result.resumed_turns for result in (await store.results(job.id)).values())
    return reexecuted, resumed


def deadline_figures(jobs: list[Tracked], outages: list[tuple[str, float, float]]) -> tuple[int, int, float]:
    """(deadlines missed, deadlines that fell in a Redis outage, latest end after a deadline in s)."""
    missed = in_outage = 0
    latest = 0.0
    for job in (j for j in jobs if j.kind == "deadline"):
        record = job.record
        if record is None or expected_end(job) is not None or not record.terminal:
            missed += 1
            continue
        deadline = record.created_at + (record.timeout_s or 0.0)
        latest = max(latest, (record.finished_at or deadline) - deadline)
        if any(kind == "redis" and down <= deadline <= up for kind, down, up in outages):
            in_outage += 1
    return missed, in_outage, latest
