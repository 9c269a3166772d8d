"""Which role may speak for a step: the coordinator's check of a step event's publisher.

A worker publishes its step's events on ``crews.events.<job>.<crew>.<role>``
and the NATS permissions let it publish only as its own role, so the subject
names the publisher. A step event counts only when that publisher is the crew
and role the job's plan assigns the step to (docs/architecture.md, "Who may
call whom").

The assignments are those of the plan the coordinator stored when it started the
job (``learn``), else read from the job's plan in Redis at its first event, and
kept (a bounded, least-recently-used cache: nothing that a restart would lose),
so an event costs no extra round trip. An event that does not
match what is kept reads the plan again once, since a hierarchical manager
assigns roles to steps after the first events: a late assignment is never
refused, a forged event costs one read.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from crews.errors import JobNotFound
from crews.jobs.store import RedisJobStore
from crews.plan.planner import Plan


@dataclass(frozen=True)
class Assignments:
    """A job's crew and the role of each step its plan has assigned."""

    crew: str
    roles: dict[str, str]

    def allows(self, step: str, crew: str, role: str) -> bool:
        return self.crew == crew and self.roles.get(step) == role


class StepRoles:
    """The assigned role of every step of recent jobs, read from their plans (``allows``)."""

    def __init__(self, store: RedisJobStore, *, jobs: int = 4096) -> None:
        self._store = store
        self._jobs = jobs
        self._known: OrderedDict[str, Assignments] = OrderedDict()

    async def allows(self, job: str, step: str, crew: str, role: str) -> bool | None:
        """Whether ``crew/role`` is the publisher the plan of ``job`` assigns ``step`` to.

        ``None``: no such job has a plan (not one the coordinator runs, e.g. a call to a role's agent).
        """
        known = self._known.get(job)
        if known is not None:
            self._known.move_to_end(job)
            if known.allows(step, crew, role):
                return True
        fresh = await self._read(job)
        return None if fresh is None else fresh.allows(step, crew, role)

    def learn(self, job: str, crew: str, plan: Plan) -> Assignments:
        """Keep the assignments of ``plan``, the job's plan as just stored or read."""
        found = Assignments(crew, {step.id: step.role for step in plan.steps if step.role is not None})
        self._known[job] = found
        self._known.move_to_end(job)
        while len(self._known) > self._jobs:
            self._known.popitem(last=False)
        return found

    async def _read(self, job: str) -> Assignments | None:
        try:
            record = await self._store.get(job)
        except JobNotFound:
            return None
        return None if record.plan is None else self.learn(job, record.crew, record.plan)
