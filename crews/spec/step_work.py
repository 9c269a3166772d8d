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
from bus.contracts.step import ContextOutput, LLMParams, RemoteAgent, RolePrompt, StepWork
from crews.spec.models import CrewSpec


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
        tools=[tool.name for tool in role.tools],
        memory=spec.memory,
        approval_tools=[tool.name for tool in role.tools if tool.approval == "required"],
        approval_waived=[tool.name for tool in role.tools if tool.approval == "none"],
        output_schema=output_schema,
        evals=evals or [],
        guardrail=guardrail,
        llm=LLMParams.model_validate(llm.model_dump()) if llm else LLMParams(),
        max_iter=role.max_iter,
        max_execution_time_s=role.max_execution_time,
        max_rpm=role.max_rpm,
        max_tokens_budget=spec.budgets.max_tokens,
        max_cost_usd_budget=spec.budgets.max_cost_usd,
        keys=StepKeys.for_job(job),
        remote=RemoteAgent(agent=role.agent) if role.engine == "a2a" and role.agent else None,
    )
