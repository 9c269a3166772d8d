"""What the HTTP API takes and returns: pydantic models, with the examples the OpenAPI docs show."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from bus.contracts.evals import EvalScore
from bus.contracts.events import ManagerDecision
from bus.contracts.result import StepUsage
from crews.jobs.store import JobRecord, JobStatus, RoleUsage, StackProcess, StepResult, StepState
from crews.plan.planner import StepKind
from crews.spec.models import CrewSpec, InputSpec, ProcessKind


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


# --- errors ------------------------------------------------------------------------------------


class ErrorIssue(BaseModel):
    """One located mistake in a crew file: where it is and how to fix it."""

    file: str
    line: int
    column: int
    field: str
    message: str


class ErrorBody(BaseModel):
    """Every error response: a stable code, a message that says what to fix, and located issues."""

    model_config = _examples(
        {
            "error": "crew_file_invalid",
            "message": "<body>:14:12: tasks.write.agent: unknown role 'writter'; did you mean 'writer'?",
            "issues": [
                {
                    "file": "<body>",
                    "line": 14,
                    "column": 12,
                    "field": "tasks.write.agent",
                    "message": "unknown role 'writter'; did you mean 'writer'?",
                }
            ],
        },
        {"error": "job_not_found", "message": "no job '4f1c…' (finished jobs are kept for 604800 s)"},
    )

    error: str = Field(description="A stable code for programs, e.g. crew_not_found.")
    message: str = Field(description="What went wrong and what to do about it, for people.")
    issues: list[ErrorIssue] = Field(default=[], description="Crew file mistakes, each at its line.")


# --- crews -------------------------------------------------------------------------------------


class CrewSummary(BaseModel):
    """A registered crew at a glance."""

    model_config = _examples(
        {
            "name": "research",
            "description": "Research a topic, write a short paragraph about it, and review the paragraph.",
            "process": "sequential",
            "roles": ["researcher", "writer", "reviewer"],
            "tasks": ["research", "write", "review"],
            "inputs": {
                "topic": {"type": "string", "default": "honey bees", "description": "What to write about"}
            },
        }
    )

    name: str
    description: str
    process: ProcessKind
    roles: list[str] = Field(description="Role keys, each its own worker process and queue.")
    tasks: list[str]
    inputs: dict[str, InputSpec] = Field(
        description="What a job gives; an input without default is required."
    )

    @classmethod
    def of(cls, spec: CrewSpec) -> CrewSummary:
        return cls(
            name=spec.name,
            description=spec.description,
            process=spec.process,
            roles=list(spec.all_roles()),
            tasks=list(spec.tasks),
            inputs=dict(spec.inputs),
        )


class CrewList(BaseModel):
    crews: list[CrewSummary]


# --- jobs --------------------------------------------------------------------------------------


class JobRequest(BaseModel):
    """A job of a crew: its inputs (checked against the crew's declared inputs before it is accepted)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"inputs": {"topic": "honey bees"}}]}
    )

    inputs: dict[str, JsonValue] = Field(default={}, description="Values for the crew's {placeholders}.")
    timeout_s: float | None = Field(
        None, gt=0, le=7 * 24 * 3600, description="Fail the job after this long; none: the server's default."
    )


class StepView(BaseModel):
    """One step of the job's plan: who does it, its state, and its output once it has one."""

    id: str
    kind: StepKind
    task: str | None
    role: str | None = Field(description="None while a hierarchical manager has not assigned it.")
    depends_on: list[str]
    state: StepState
    attempts: int = Field(
        0,
        description="Deliveries of the step that started work (more than 1: it was retried or redelivered).",
    )
    output: str | None = Field(None, description="The step's result, once recorded.")
    data: JsonValue = Field(None, description="Structured result, for tasks with an output schema.")
    worker: str = ""
    usage: StepUsage = Field(
        default_factory=StepUsage, description="Tokens and cost of the recorded result's LLM calls."
    )
    tokens: int = Field(0, description="Input plus output tokens of the recorded result's LLM calls.")
    cost_usd: float = Field(0.0, description="What those tokens cost, at the operator's CREWS_LLM_PRICES.")
    duration_s: float | None = Field(None, description="How long the step ran in its worker.")
    evals: list[EvalScore] = Field(default=[], description="The task's quality checks, scored on the output.")


class JobSummary(BaseModel):
    id: str
    crew: str
    status: JobStatus
    created_at: float
    finished_at: float | None
    reason: str = Field("", description="Why the job failed or was cancelled.")
    tokens: int = Field(0, description="Input plus output tokens of every role, every attempt counted.")
    cost_usd: float = Field(
        0.0, description="What those tokens cost (USD, at the operator's CREWS_LLM_PRICES)."
    )

    @classmethod
    def of(cls, record: JobRecord, usage: dict[str, RoleUsage] | None = None) -> JobSummary:
        usage = usage or {}
        return cls(
            id=record.id,
            crew=record.crew,
            status=record.status,
            created_at=record.created_at,
            finished_at=record.finished_at,
            reason=record.reason,
            tokens=sum(u.input_tokens + u.output_tokens for u in usage.values()),
            cost_usd=sum(u.cost_usd for u in usage.values()),
        )


class JobView(JobSummary):
    """A job in full: its plan with each step's state and output, usage per role, and the outcome."""

    model_config = _examples(
        {
            "id": "9b2f0c4e1d7a43a8b6c1",
            "crew": "research",
            "status": "running",
            "created_at": 1767225600.0,
            "finished_at": None,
            "reason": "",
            "inputs": {"topic": "honey bees"},
            "plan_version": 1,
            "steps": [
                {
                    "id": "research",
                    "kind": "task",
                    "task": "research",
                    "role": "researcher",
                    "depends_on": [],
                    "state": "completed",
                    "attempts": 1,
                    "output": "- Bees dance.",
                    "worker": "w-1",
                },
                {
                    "id": "write",
                    "kind": "task",
                    "task": "write",
                    "role": "writer",
                    "depends_on": ["research"],
                    "state": "working",
                    "output": None,
                },
            ],
            "usage": {
                "researcher": {"input_tokens": 210, "output_tokens": 48, "calls": 1, "cost_usd": 0.0000708}
            },
            "tokens": 258,
            "cost_usd": 0.0000708,
            "output": "",
        }
    )

    inputs: dict[str, JsonValue]
    plan_version: int = Field(description="0 until the coordinator has planned the job.")
    steps: list[StepView]
    usage: dict[str, RoleUsage] = Field(
        description="LLM tokens, calls and cost per role, of every attempt (failed and redelivered ones too)."
    )
    output: str = Field(description="The job's final output, once completed.")
    evals_failed: int = Field(0, description="Evals that failed, over every step.")
    decisions: list[ManagerDecision] = Field(
        default=[], description="Hierarchical crews: the manager's decision on each result, in plan order."
    )

    @classmethod
    def build(cls, record: JobRecord, results: dict[str, StepResult], usage: dict[str, RoleUsage]) -> JobView:
        plan = record.plan
        steps = [
            StepView(
                id=step.id,
                kind=step.kind,
                task=step.task,
                role=step.role,
                depends_on=list(step.depends_on),
                state=record.steps.get(step.id, "pending"),
                attempts=record.attempts.get(step.id, 0),
                output=results[step.id].output if step.id in results else None,
                data=results[step.id].data if step.id in results else None,
                worker=results[step.id].worker if step.id in results else "",
                usage=results[step.id].usage if step.id in results else StepUsage(),
                tokens=results[step.id].usage.tokens if step.id in results else 0,
                cost_usd=results[step.id].usage.cost_usd if step.id in results else 0.0,
                duration_s=results[step.id].duration_s if step.id in results else None,
                evals=results[step.id].evals if step.id in results else [],
            )
            for step in (plan.steps if plan is not None else [])
        ]
        return cls(
            **JobSummary.of(record, usage).model_dump(),
            inputs=record.inputs,
            plan_version=record.plan_version,
            steps=steps,
            usage=usage,
            output=record.output,
            evals_failed=sum(len(r.failed_evals) for r in results.values()),
            decisions=[s.decision for s in (plan.steps if plan else []) if s.decision is not None],
        )


class JobList(BaseModel):
    jobs: list[JobSummary] = Field(description="Newest first.")


# --- operations --------------------------------------------------------------------------------


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """Whether this API can serve: NATS and Redis reachable."""

    model_config = _examples(
        {"ready": True, "checks": {"nats": "ok", "redis": "ok"}},
        {"ready": False, "checks": {"nats": "ok", "redis": "cannot reach Redis: Connection refused"}},
    )

    ready: bool
    checks: dict[str, str]


class RoleLoad(BaseModel):
    """One role's load: what KEDA and the local autoscaler scale on, and the workers running."""

    crew: str
    role: str
    queue_depth: int = Field(description="Steps waiting for or held by the role's workers.")
    workers: int | None = Field(None, description="Worker processes (local stack); None where KEDA scales.")


class RoleList(BaseModel):
    roles: list[RoleLoad]
    processes: list[StackProcess] = Field(
        default=[], description="The local stack's processes and their restarts (crews up); empty elsewhere."
    )
