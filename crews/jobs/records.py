"""A job's state hash, parsed: ``JobRecord`` (what ``RedisJobStore.get`` returns)."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Annotated, Any

from pydantic import BaseModel, Field, SkipValidation

from bus.contracts.states import TERMINAL, JobStatus, StepState
from crews.plan.planner import Plan
from crews.spec.models import CrewSpec


class JobRecord(BaseModel):
    """A job as stored: its status, plan, the crew it runs (as registered), and what it produced."""

    id: str
    crew: str
    status: JobStatus
    inputs: dict[str, Any] = Field(default_factory=dict)
    # parsed and validated once per version (``stored_plan``, ``stored_crew``), not again per record:
    # the crew's cross-checks cost ~20 µs a read, and the coordinator reads a job on every event
    plan: Annotated[Plan | None, SkipValidation] = None
    plan_version: int = 0
    crew_spec: Annotated[CrewSpec | None, SkipValidation] = None
    steps: dict[str, StepState] = Field(default_factory=dict)
    attempts: dict[str, int] = Field(default_factory=dict, description="deliveries each step has started")
    timeout_s: float | None = None
    output: str = ""
    reason: str = ""
    traceparent: str = ""
    owner: str = Field("", description="the principal that submitted the job")
    created_at: float = 0.0
    finished_at: float | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


@lru_cache(maxsize=256)
def stored_crew(raw: str) -> CrewSpec:
    """A crew as stored: validated once (at registration), parsed here once per process per version.

    The result is shared by every caller: treat it as read-only.
    """
    return CrewSpec.model_validate_json(raw)


@lru_cache(maxsize=1024)
def stored_plan(raw: str) -> Plan:
    """A job's plan as stored, parsed once per process per version (the coordinator reads it on
    every pass over the job). Plans are frozen; the result is shared by every caller."""
    return Plan.model_validate_json(raw)


def parse_record(raw: dict[str, str], progress: dict[str, str] | None = None) -> JobRecord:
    """The state hash ``raw``, with the steps the job's ``progress`` hash says have started.

    A started step the coordinator has only dispatched is ``working`` while the job runs; its attempt is
    the highest the worker or an older coordinator recorded.
    """
    steps: dict[str, str] = {k.removeprefix("step:"): v for k, v in raw.items() if k.startswith("step:")}
    attempts = {k.removeprefix("attempts:"): int(v) for k, v in raw.items() if k.startswith("attempts:")}
    running = raw.get("status") == "running"
    for step, started in (progress or {}).items():
        attempts[step] = max(attempts.get(step, 0), int(started))
        if running and steps.get(step, "pending") in ("pending", "dispatched"):
            steps[step] = "working"
    return JobRecord(
        id=raw["id"],
        crew=raw.get("crew", ""),
        status=raw.get("status", "submitted"),
        inputs=json.loads(raw.get("inputs", "{}")),
        plan=stored_plan(raw["plan"]) if "plan" in raw else None,
        plan_version=int(raw.get("plan_version", 0)),
        crew_spec=stored_crew(raw["crew_spec"]) if "crew_spec" in raw else None,
        steps=steps,
        attempts=attempts,
        timeout_s=float(raw["timeout_s"]) if raw.get("timeout_s") else None,
        output=raw.get("output", ""),
        reason=raw.get("reason", ""),
        traceparent=raw.get("traceparent", ""),
        owner=raw.get("owner", ""),
        created_at=float(raw.get("created_at", 0)),
        finished_at=float(raw["finished_at"]) if "finished_at" in raw else None,
    )
