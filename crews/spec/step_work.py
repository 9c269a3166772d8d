"""The one builder of ``StepWork``: a role of a crew file, doing one task, as the worker receives it.

Both the coordinator (a plan step, ``crews.plan.step_work``) and a role's A2A
agent on NATS (a direct call) build their steps here, so a step carries the
same tool allow-list, approval rules, token budget, memory switch and LLM
parameters however it reached the worker.
"""

from __future__ import annotations

from typing import Any

from bus.contracts.evals import EvalSpec
from bus.contracts.keys import StepKeys
from bus.contracts.step import (
    ContextOutput,
    CrewAIGuardrail,
    CrewAIParts,
    LLMParams,
    RemoteAgent,
    RolePrompt,
    StepWork,
)
from crews.spec.models import CrewSpec, RoleSpec, TaskSpec


def build_step_work(
    spec: CrewSpec,
    role_key: str,
    *,
    job: str,
    step: str,
    task: str,
    prompt: RolePrompt,
    description: str,
    expected_output: str,
    context: list[ContextOutput] | None = None,
    output_schema: dict[str, Any] | None = None,
    evals: list[EvalSpec] | None = None,
    guardrail: str | None = None,
    plan_version: int = 1,
) -> StepWork:
    """Everything the worker needs for one step of ``role_key`` (a role of ``spec``, manager included)."""
    role = spec.all_roles()[role_key]
    llm = role.llm
    return StepWork(
        job=job,
        crew=spec.name,
        step=step,
        task=task,
        role=role_key,
        plan_version=plan_version,
        engine=role.engine,
        prompt=prompt,
        description=description,
        expected_output=expected_output,
        context=context or [],
        tools=[tool.name for tool in role.tools if tool.crewai is None],
        memory=spec.memory,
        approval_tools=[tool.name for tool in role.tools if tool.approval == "required"],
        approval_waived=[tool.name for tool in role.tools if tool.approval == "none"],
        output_schema=output_schema,
        evals=evals or [],
        guardrail=guardrail,
        crewai=_crewai_parts(role, spec.tasks.get(task)) if role.engine == "crewai" else None,
        llm=LLMParams.model_validate(llm.model_dump()) if llm else LLMParams(),
        max_iter=role.max_iter,
        max_execution_time_s=role.max_execution_time,
        max_rpm=role.max_rpm,
        max_tokens_budget=spec.budgets.max_tokens,
        max_cost_usd_budget=spec.budgets.max_cost_usd,
        keys=StepKeys.for_job(job),
        remote=RemoteAgent(agent=role.agent) if role.engine == "a2a" and role.agent else None,
    )


def _crewai_parts(role: RoleSpec, task: TaskSpec | None) -> CrewAIParts | None:
    """The CrewAI project's objects a crewai step uses: the role's CrewAI tools, the task's guardrails etc."""
    tools = {tool.name: tool.crewai for tool in role.tools if tool.crewai is not None}
    if task is None:
        return CrewAIParts(tools=tools) if tools else None
    guardrails = [
        CrewAIGuardrail(rule=g) if isinstance(g, str) else CrewAIGuardrail(function=g.function)
        for g in task.guardrails
    ]
    return CrewAIParts(
        tools=tools,
        guardrails=guardrails,
        guardrail_max_retries=task.guardrail_max_retries,
        output_model=task.output_pydantic or task.output_json,
        human_input=task.human_input,
    )
