"""The operator's ceilings on every number a crew file sets (settings, prefix ``CREWS_MAX_``).

A crew file arrives over the API and is attacker-written: ``max_iter:
100000000`` or ``scaling.min: 5000`` must not reach a worker or ``crews up``.
``limit_problems(spec, limits)`` lists every value over its ceiling, at its
place in the file; the API refuses such a crew (422), and role workers clamp
what they run to the same ceilings (a crew stored before a ceiling was lowered).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from crews.spec.problems import Problem

if TYPE_CHECKING:  # the crew models load where crews are read, not with the limits' settings
    from crews.spec.models import CrewSpec


class SpecLimits(BaseSettings):
    """Ceilings on a crew file's numbers; every default suits ``crews up`` and a small cluster."""

    model_config = SettingsConfigDict(env_prefix="CREWS_MAX_", extra="ignore")

    roles: int = Field(32, ge=1, description="roles in one crew")
    tasks: int = Field(64, ge=1, description="tasks in one crew")
    inputs: int = Field(64, ge=0, description="inputs of one crew")
    tools: int = Field(32, ge=0, description="tools of one role")
    iter: int = Field(50, ge=1, description="a role's max_iter (reasoning/tool iterations per step)")
    workers: int = Field(20, ge=1, description="a role's scaling.min and scaling.max")
    llm_tokens: int = Field(8192, ge=1, description="a role's llm.max_tokens (one completion)")
    job_tokens: int = Field(2_000_000, ge=1, description="a crew's budgets.max_tokens")
    steps: int = Field(500, ge=1, description="a crew's budgets.max_steps")
    execution_time_s: float = Field(3600.0, gt=0, description="a role's max_execution_time")
    job_timeout_s: float = Field(
        24 * 3600.0, gt=0, description="a job's timeout_s (and the default's ceiling)"
    )


def limit_problems(spec: CrewSpec, limits: SpecLimits) -> list[Problem]:
    """Every number of ``spec`` over its ceiling, at the path where the file sets it."""
    return list(_problems(spec, limits))


def _over(
    path: tuple[str | int, ...], value: float | None, ceiling: float, setting: str
) -> Iterator[Problem]:
    if value is not None and value > ceiling:
        yield Problem(
            path,
            f"{value:g} is over this server's limit of {ceiling:g} (CREWS_MAX_{setting.upper()}): "
            "use a smaller value, or ask the operator to raise the limit",
        )


def _problems(spec: CrewSpec, limits: SpecLimits) -> Iterator[Problem]:
    for section, count, ceiling, setting in (
        ("roles", len(spec.roles), limits.roles, "roles"),
        ("tasks", len(spec.tasks), limits.tasks, "tasks"),
        ("inputs", len(spec.inputs), limits.inputs, "inputs"),
    ):
        if count > ceiling:
            yield Problem(
                (section,),
                f"the crew has {count} {section}, over this server's limit of {ceiling} "
                f"(CREWS_MAX_{setting.upper()}): split it into smaller crews",
                at_key=True,
            )
    for key, role in spec.roles.items():
        here = ("roles", key)
        yield from _over((*here, "max_iter"), role.max_iter, limits.iter, "iter")
        yield from _over((*here, "scaling", "min"), role.scaling.min, limits.workers, "workers")
        yield from _over((*here, "scaling", "max"), role.scaling.max, limits.workers, "workers")
        yield from _over((*here, "max_execution_time"), role.max_execution_time, limits.execution_time_s,
                         "execution_time_s")  # fmt: skip
        if role.llm is not None:
            yield from _over(
                (*here, "llm", "max_tokens"), role.llm.max_tokens, limits.llm_tokens, "llm_tokens"
            )
        if len(role.tools) > limits.tools:
            yield Problem((*here, "tools"), f"{len(role.tools)} tools, over this server's limit of "
                          f"{limits.tools} (CREWS_MAX_TOOLS)")  # fmt: skip
    if spec.manager_llm is not None:
        yield from _over(
            ("manager_llm", "max_tokens"), spec.manager_llm.max_tokens, limits.llm_tokens, "llm_tokens"
        )
    yield from _over(("budgets", "max_tokens"), spec.budgets.max_tokens, limits.job_tokens, "job_tokens")
    yield from _over(("budgets", "max_steps"), spec.budgets.max_steps, limits.steps, "steps")
