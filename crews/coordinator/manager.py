"""The coordinator's part of a hierarchical manager's loop: store the plan ``manage`` makes, tell each decision.

``crews.plan.manager.manage`` derives the next plan from the stored plan and the
results (the manager's assignment, one review per member result, each review's
decision). This module makes that durable without applying anything twice:

- each decision's job event is published first, under an id per review step
  (``<job>:decision:<review>``), so a coordinator killed after publishing and
  before storing publishes the same event again, which JetStream drops;
- the plan is stored only over the version it was made from (compare and set),
  so two coordinators (or one that was killed and replaced) cannot both apply
  a decision: the one that loses reads the new plan and finds it applied.
"""

from __future__ import annotations

from nats.js import JetStreamContext

from bus.contracts.result import StepResult
from crews.jobs.events import publish_decision
from crews.jobs.store import RedisJobStore
from crews.plan.manager import manage
from crews.plan.planner import Plan
from crews.spec.models import CrewSpec

__all__ = ["manager_turn"]


async def manager_turn(
    js: JetStreamContext,
    store: RedisJobStore,
    job: str,
    spec: CrewSpec,
    current: Plan,
    results: dict[str, StepResult],
) -> Plan | None:
    """The plan to dispatch from, after the manager's due changes; None when another coordinator won the race.

    Raises ``ManagerError`` (or ``PlanError``) when a decision cannot be applied: the job fails with it.
    """
    if spec.process != "hierarchical" or spec.manager_role is None:
        return current
    updated, decisions = manage(current, results, spec.manager_role)
    if updated.version == current.version:
        return current
    for decision in decisions:
        await publish_decision(js, job, decision)
    if not await store.replace_plan(job, updated, expected_version=current.version):
        return None
    return updated
