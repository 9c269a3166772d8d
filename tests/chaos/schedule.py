"""The seeded plan of a chaos run: which jobs in which order, and which kill strikes after how many tool calls.

Kills are placed against progress, not time: each one strikes once the ledger
holds a given number of tool calls (a fraction of what the run's ledger jobs
will make), so the same seed breaks the same run at the same points however
fast the machine is. Each kind strikes at least once when there are at least
five kills; the rest are drawn with workers most likely.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tests.chaos.cluster import KILL_KINDS, KillKind
from tests.chaos.scenario import CALLS_PER_JOB, JobKind

DEADLINE_TIMEOUTS_S = (2.0, 3.0, 4.0)
OUTAGE_DEADLINE_TIMEOUT_S = 3.0  # the job a Redis outage is timed against
EXTRA_KILL_WEIGHTS = {"worker": 5, "coordinator": 2, "nats": 1, "redis": 1, "pause": 1}


@dataclass(frozen=True)
class PlannedJob:
    n: int
    kind: JobKind
    timeout_s: float | None = None  # deadline jobs only; the others run with the default


@dataclass(frozen=True)
class PlannedKill:
    kind: KillKind
    at_calls: int  # strikes once the ledger holds this many tool calls
    before_deadline_s: float = 0.0  # redis: the server dies this long before its deadline job's deadline


@dataclass(frozen=True)
class ChaosPlan:
    jobs: list[PlannedJob]
    kills: list[PlannedKill]

    def count(self, kind: JobKind) -> int:
        return sum(1 for job in self.jobs if job.kind == kind)


def make_plan(seed: int, ledger_jobs: int, kills: int) -> ChaosPlan:
    """``ledger_jobs`` ledger jobs with deadline and doomed jobs mixed in, and ``kills`` kills, from ``seed``."""
    rng = random.Random(seed)
    kinds: list[JobKind] = ["ledger"] * ledger_jobs
    kinds += ["deadline"] * max(1, ledger_jobs // 20)
    kinds += ["doomed"] * max(1, ledger_jobs // 100)
    first, rest = kinds[:1], kinds[1:]  # a ledger job first: the run makes progress from the start
    rng.shuffle(rest)
    jobs = [
        PlannedJob(n, kind, rng.choice(DEADLINE_TIMEOUTS_S) if kind == "deadline" else None)
        for n, kind in enumerate(first + rest)
    ]
    kill_kinds = list(KILL_KINDS[: min(kills, len(KILL_KINDS))])
    extra = list(EXTRA_KILL_WEIGHTS)
    weights = list(EXTRA_KILL_WEIGHTS.values())
    kill_kinds += rng.choices(extra, weights, k=max(0, kills - len(KILL_KINDS)))
    rng.shuffle(kill_kinds)
    total = ledger_jobs * CALLS_PER_JOB
    points = sorted(max(1, int(rng.uniform(0.05, 0.7) * total)) for _ in kill_kinds)
    planned = [
        PlannedKill(kind, at, round(rng.uniform(0.2, 1.0), 2) if kind == "redis" else 0.0)
        for kind, at in zip(kill_kinds, points, strict=True)
    ]
    return ChaosPlan(jobs, planned)
