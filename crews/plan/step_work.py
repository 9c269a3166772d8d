"""Turn a plan step into the ``StepWork`` a role worker receives: its persona, context outputs, output schema."""

from __future__ import annotations

from typing import Any

from bus.contracts.result import StepResult
from bus.contracts.step import ContextOutput, RolePrompt, StepWork
from crews.plan.manager import decision_schema, team
from crews.plan.planner import MANAGER_STEP, Plan, Step, unassigned_step_ids
from crews.spec.models import CrewSpec
from crews.spec.step_work import build_step_work


def plan_step_work(
    job: str, spec: CrewSpec, plan: Plan, step: Step, results: dict[str, StepResult]
) -> StepWork:
    """Everything the worker needs for ``step`` (its role must be assigned)."""
    assert step.role is not None, f"step {step.id} has no role yet"
    persona = plan.personas[step.role]
    return build_step_work(
        spec,
        step.role,
        job=job,
        step=step.id,
        task=step.task or step.id,
        plan_version=plan.version,
        prompt=RolePrompt(role=persona.role, goal=persona.goal, backstory=persona.backstory),
        description=step.description,
        expected_output=step.expected_output,
        context=[
            ContextOutput(step=dep, task=plan.step(dep).task or dep, output=results[dep].output)
            for dep in step.context
            if dep in results
        ],
        output_schema=_output_schema(spec, plan, step),
        evals=step.evals,
        guardrail=step.guardrail,
    )


def _output_schema(spec: CrewSpec, plan: Plan, step: Step) -> dict[str, Any] | None:
    if step.id == MANAGER_STEP:
        return manager_schema(spec, plan)
    if step.kind == "review":
        return decision_schema(team(plan, str(spec.manager_role)))
    return dict(step.output_schema) if step.output_schema else None


def manager_schema(spec: CrewSpec, plan: Plan) -> dict[str, Any]:
    """The manager answers with one team member per unassigned task; constrained decoding keeps it valid."""
    team = [key for key in spec.all_roles() if key != spec.manager_role]
    unassigned = unassigned_step_ids(plan)
    return {
        "type": "object",
        "properties": {task: {"type": "string", "enum": team} for task in unassigned},
        "required": unassigned,
        "additionalProperties": False,
    }
