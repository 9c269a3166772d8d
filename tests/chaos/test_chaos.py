"""A short seeded chaos run: 20 ledger jobs while workers, coordinators, nats-server and Redis are SIGKILLed
and a worker is paused.

The run (``tests.chaos.runner``) starts its own servers and processes; see
``make chaos`` for the long one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.cluster import KILL_KINDS
from tests.chaos.runner import ChaosOptions, run_chaos


@pytest.mark.slow
@pytest.mark.timeout(240)  # the run's own limit is 80 s once its processes are up; they may start slowly
async def test_a_short_chaos_run_loses_nothing_and_does_nothing_twice(tmp_path: Path) -> None:
    report = await run_chaos(ChaosOptions(jobs=20, seed=20, kills=6, duration_s=80, workdir=tmp_path))
    print("\n".join(report.lines()))

    assert report.problems() == []
    assert (report.lost, report.stuck, report.unexpected_ends) == (0, 0, [])
    assert report.submitted == report.planned
    assert report.completed == 20  # every ledger job
    assert (report.double_results, report.double_side_effects) == (0, 0)
    assert (report.missing_side_effects, report.unstable_keys) == (0, 0)
    assert report.tool_calls >= 20 * 11  # each call of every completed job ran, repeats only deduplicated
    assert report.deadlines_missed == 0 and report.deadline_jobs >= 2
    assert report.deadlines_in_redis_outage >= 1  # a deadline that passed while Redis was down still fired
    assert report.dead_letter_jobs == report.dead_letters_failed_right >= 1
    assert all(report.kills.get(kind, 0) >= 1 for kind in KILL_KINDS), report.kills
    assert sum(report.kills.values()) == 6
    assert report.steps_reexecuted >= 1 and report.turns_resumed >= 1  # the kills hit steps mid-way
