"""Turn a plan step into the ``StepWork`` a role worker receives: prompt, context outputs, tools, limits."""

from __future__ import annotations

from typing import Any

from bus.contracts.step import ContextOutput, LLMParams, RemoteAgent, RolePrompt, StepWork
from crews.jobs.store import StepResult, job_keys
from crews.plan.planner import MANAGER_STEP, Plan, Step, unassigned_step_ids
from crews.spec.models import CrewSpec


def build_step_work(
    job: str, spec: CrewSpec, plan: Plan, step: Step, results: dict[str, StepResult]
) -> StepWork:
    """Everything the worker needs for ``step`` (its role must be assigned)."""
    assert step.role is not None, f"step {step.id} has no role yet"
    role = spec.all_roles()[step.role]
    persona = plan.personas[step.role]
    context = [
        ContextOutput(step=dep, task=plan.step(dep).task or dep, output=results[dep].output)
        for dep in step.context
        if dep in results
    ]
    llm = role.llm
    return StepWork(
        job=job,
        crew=spec.name,
        step=step.id,
        task=step.task or step.id,
        role=step.role,
        plan_version=plan.version,
        engine=role.engine,
        prompt=RolePrompt(role=persona.role, goal=persona.goal, backstory=persona.backstory),
        description=step.description,
        expected_output=step.expected_output,
        context=context,
        tools=[tool.name for tool in role.tools],
        memory=spec.memory,
        approval_tools=[tool.name for tool in role.tools if tool.approval == "required"],
        output_schema=_output_schema(spec, plan, step),
        llm=LLMParams.model_validate(llm.model_dump()) if llm else LLMParams(),
        max_iter=role.max_iter,
        max_execution_time_s=role.max_execution_time,
        max_tokens_budget=spec.budgets.max_tokens,
        max_cost_usd_budget=spec.budgets.max_cost_usd,
        keys=job_keys(job),
        remote=RemoteAgent(url=role.url, nats=role.nats, auth_header_env=role.headers_from)
        if role.engine == "a2a"
        else None,
    )


def _output_schema(spec: CrewSpec, plan: Plan, step: Step) -> dict[str, Any] | None:
    if step.id == MANAGER_STEP:
        return manager_schema(spec, plan)
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
