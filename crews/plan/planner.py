"""The planner: from a crew and a job's inputs to a plan, a DAG of steps with stable ids. Pure, no I/O.

Each task becomes one step whose id is the task's key, so ids are the same
every time the crew is loaded. How steps depend on each other follows the
crew's process, as CrewAI runs it:

- ``sequential``: tasks run in file order; a task receives the outputs of its
  ``context`` tasks or, if it declares none, of the task before it.
- ``parallel``: a task waits only for its ``context`` tasks, so every task
  whose context is done can run at once (fan-out, fan-in).
- ``hierarchical``: a manager step comes first and says who does each
  unassigned task; tasks then run as in ``sequential``. The manager then
  reviews each result and may add steps at run time (``crews.plan.manager``,
  :func:`add_steps`), each change giving a new plan version.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence, Set
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, model_validator

from bus.contracts.evals import EvalSpec
from bus.contracts.events import ManagerDecision
from crews.errors import PlanError
from crews.spec.models import PLACEHOLDER, CrewSpec, ProcessKind, is_token, matches_type
from crews.spec.problems import describe, did_you_mean, suggest
from crews.spec.rules import TYPE_WORDS

__all__ = [
    "MANAGER_STEP",
    "Persona",
    "Plan",
    "Step",
    "StepKind",
    "add_steps",
    "assign_roles",
    "counted_steps",
    "dependencies",
    "final_step_ids",
    "interpolate",
    "next_version",
    "plan",
    "ready_steps",
    "resolve_inputs",
    "unassigned_step_ids",
]

MANAGER_STEP = "_manager"
"""Id of the first step of a hierarchical plan (task keys cannot start with '_')."""

StepKind = Literal["task", "manager", "added", "review"]
"""``task``: a crew task (or a new attempt of one); ``manager``: the first step of a hierarchical
plan; ``added``: a further task the manager delegated; ``review``: the manager's look at one result."""


def _step_id(value: str) -> str:
    if not is_token(value):
        raise ValueError(f"'{value}' cannot be a step id: use only letters, digits, '_' and '-'")
    return value


StepId = Annotated[str, AfterValidator(_step_id)]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Persona(_Frozen):
    """A role's texts with the job's inputs filled in: what the worker tells the model it is."""

    role: str
    goal: str
    backstory: str = ""


class Step(_Frozen):
    """One unit of work for one role: an A2A task of the job."""

    id: StepId
    kind: StepKind = "task"
    task: str | None = Field(
        None, description="The crew task this step does (none for manager and added steps)."
    )
    role: str | None = Field(
        None, description="Role key; none while a hierarchical manager has not assigned it."
    )
    description: str
    expected_output: str
    depends_on: list[str] = Field(default=[], description="Steps that must be done before this one.")
    context: list[str] = Field(
        default=[], description="Steps whose outputs this one receives (within depends_on)."
    )
    output_schema: dict[str, JsonValue] | None = None
    guardrail: str | None = None
    human_input: bool = False
    output_file: str | None = None
    evals: list[EvalSpec] = []
    added_in: int = Field(1, ge=1, description="The plan version that added the step (its dispatch id).")
    reviews: str | None = Field(None, description="A review step: the step whose result it looks at.")
    revises: str | None = Field(None, description="A new attempt: the step whose result was sent back.")
    decision: ManagerDecision | None = Field(None, description="A review step: its decision, once applied.")


class Plan(_Frozen):
    """A job's steps in an order where every step comes after the steps it depends on."""

    crew: str
    version: int = Field(1, ge=1)
    process: ProcessKind
    inputs: dict[str, JsonValue] = {}
    personas: dict[str, Persona]
    steps: list[Step]
    max_steps: int | None = None

    @model_validator(mode="after")
    def _is_ordered_dag(self) -> Plan:
        seen: set[str] = set()
        for step in self.steps:
            if step.id in seen:
                raise ValueError(f"step '{step.id}' appears twice")
            if missing := [d for d in step.depends_on if d not in seen]:
                raise ValueError(f"step '{step.id}' depends on {missing}, which do not come before it")
            if extra := [c for c in step.context if c not in step.depends_on]:
                raise ValueError(f"step '{step.id}' has context {extra} outside its depends_on")
            if step.role is not None and step.role not in self.personas:
                raise ValueError(f"step '{step.id}' has unknown role '{step.role}'")
            seen.add(step.id)
        return self

    def step(self, step_id: str) -> Step:
        """The step with this id (``KeyError`` if there is none)."""
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)


def resolve_inputs(spec: CrewSpec, given: Mapping[str, object]) -> dict[str, JsonValue]:
    """The job's input values: given ones checked against their types, defaults for the rest."""
    values: dict[str, JsonValue] = {}
    missing = []
    for name, declared in spec.inputs.items():
        value = given.get(name)
        if value is None:
            if declared.default is None:
                missing.append(name)
            values[name] = declared.default
        elif not matches_type(value, declared.type):
            kind = declared.type
            raise PlanError(
                f"input '{name}' must be {TYPE_WORDS[kind]} (type: {kind}), got {describe(value)}"
            )
        else:
            values[name] = value  # type: ignore[assignment]  # matches_type checked it is JSON
    if missing:
        unknown = [k for k in given if k not in spec.inputs]
        raise PlanError("; ".join(_missing(spec, name, unknown) for name in missing))
    return values


def _missing(spec: CrewSpec, name: str, unknown: list[str]) -> str:
    about = spec.inputs[name].description
    message = f"crew '{spec.name}' is missing input '{name}'" + (f" ({about})" if about else "")
    typo = did_you_mean(name, unknown)
    return message + (f"; '{typo}' was given: did you mean '{name}'?" if typo else "")


def interpolate(text: str, values: Mapping[str, JsonValue]) -> str:
    """Fill ``{name}`` placeholders as CrewAI does; text values as they are, others as JSON."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise PlanError(f"{{{name}}} has no value" + suggest(name, values))
        value = values[name]
        return value if isinstance(value, str) else json.dumps(value)

    return PLACEHOLDER.sub(fill, text)


def dependencies(spec: CrewSpec) -> dict[str, tuple[list[str], list[str]]]:
    """For each task key: (the steps it waits for, the steps whose outputs it receives)."""
    out: dict[str, tuple[list[str], list[str]]] = {}
    previous: str | None = None
    for key, task in spec.tasks.items():
        if spec.process == "parallel":
            context = list(task.context or [])
            out[key] = (context, context)
            continue
        default = [previous] if previous else []
        context = list(task.context) if task.context is not None else default
        waits = context + ([previous] if previous and previous not in context else [])
        if spec.process == "hierarchical" and not waits:
            waits = [MANAGER_STEP]
        out[key] = (waits, context)
        previous = key
    return out


def plan(spec: CrewSpec, inputs: Mapping[str, object]) -> Plan:
    """The plan of one job of ``spec`` with these inputs (``PlanError`` if an input is missing or wrong)."""
    values = resolve_inputs(spec, inputs)
    deps = dependencies(spec)
    steps = [_manager_step(spec, values)] if spec.process == "hierarchical" else []
    order = _topological(list(spec.tasks), deps) if spec.process == "parallel" else list(spec.tasks)
    steps += [_task_step(spec, key, deps[key], values) for key in order]
    personas = {
        key: Persona(
            role=_fill(role.role, values),
            goal=_fill(role.goal, values),
            backstory=_fill(role.backstory, values),
        )
        for key, role in spec.all_roles().items()
    }
    return Plan(
        crew=spec.name,
        process=spec.process,
        inputs=values,
        personas=personas,
        steps=steps,
        max_steps=spec.budgets.max_steps,
    )


def _fill(text: str, values: Mapping[str, JsonValue]) -> str:
    return interpolate(text, values).strip()


def _task_step(
    spec: CrewSpec, key: str, deps: tuple[list[str], list[str]], values: Mapping[str, JsonValue]
) -> Step:
    task = spec.tasks[key]
    return Step(
        id=key,
        task=key,
        role=task.agent,
        description=_fill(task.description, values),
        expected_output=_fill(task.expected_output, values),
        depends_on=deps[0],
        context=deps[1],
        output_schema=task.output_schema,
        guardrail=task.guardrail,
        human_input=task.human_input,
        output_file=_fill(task.output_file, values) if task.output_file else None,
        evals=list(task.evals),
    )


def _topological(keys: list[str], deps: Mapping[str, tuple[list[str], list[str]]]) -> list[str]:
    """Keys ordered so each comes after what it waits for; ties keep file order (stable)."""
    done: list[str] = []
    left = list(keys)
    while left:
        ready = next(k for k in left if all(d in done for d in deps[k][0]))  # the spec is acyclic
        done.append(ready)
        left.remove(ready)
    return done


def _manager_step(spec: CrewSpec, values: Mapping[str, JsonValue]) -> Step:
    lines = [
        f"Plan the work of the crew '{spec.name}'." + (f" {spec.description}" if spec.description else "")
    ]
    lines.append("Tasks, in order:")
    for key, task in spec.tasks.items():
        who = task.agent or "unassigned"
        first = (_fill(task.description, values).splitlines() or [""])[0]
        lines.append(f"- {key} ({who}): {first}")
    lines.append("Team:")
    for key, role in spec.roles.items():
        if key != spec.manager_role:
            lines.append(f"- {key}: {_fill(role.role, values)}. {_fill(role.goal, values)}")
    lines.append("Give each unassigned task to one team member. Add steps only if the work needs them.")
    return Step(
        id=MANAGER_STEP,
        kind="manager",
        role=spec.manager_role,
        description="\n".join(lines),
        expected_output="One line per unassigned task: the task, then the team member who will do it.",
    )


def add_steps(current: Plan, new_steps: Sequence[Step]) -> Plan:
    """A new plan (version + 1) with steps the manager added; they may depend on any step before them."""
    known = {s.id for s in current.steps}
    for step in new_steps:
        if step.kind != "added" or step.task is not None:
            raise PlanError(f"step '{step.id}': an added step has kind 'added' and no task")
        if step.id in known:
            raise PlanError(f"step '{step.id}' is already in the plan")
        _check_role(current, step.id, step.role)
        for dep in step.depends_on:
            if dep not in known:
                raise PlanError(f"step '{step.id}' depends on unknown step '{dep}'" + suggest(dep, known))
        if extra := [c for c in step.context if c not in step.depends_on]:
            raise PlanError(f"step '{step.id}': context {extra} must also be in depends_on")
        known.add(step.id)
    total = len(counted_steps(current.steps)) + len(counted_steps(new_steps))
    if current.max_steps is not None and total > current.max_steps:
        raise PlanError(
            f"adding {len(new_steps)} steps would make {total}, over the budget of {current.max_steps}"
        )
    added = [s.model_copy(update={"added_in": current.version + 1}) for s in new_steps]
    return next_version(current, [*current.steps, *added])


def counted_steps(steps: Sequence[Step]) -> list[Step]:
    """The steps ``max_steps`` counts: all but the manager's reviews (each follows a counted step)."""
    return [s for s in steps if s.kind != "review"]


def assign_roles(current: Plan, roles: Mapping[str, str]) -> Plan:
    """A new plan (version + 1) where the manager has given unassigned steps to roles."""
    ids = {s.id for s in current.steps}
    for step_id, role in roles.items():
        if step_id not in ids:
            raise PlanError(f"unknown step '{step_id}'" + suggest(step_id, ids))
        assigned = current.step(step_id).role
        if assigned is not None:
            raise PlanError(f"step '{step_id}' is already assigned to '{assigned}'")
        _check_role(current, step_id, role)
    steps = [s.model_copy(update={"role": roles[s.id]}) if s.id in roles else s for s in current.steps]
    return next_version(current, steps)


def next_version(current: Plan, steps: list[Step]) -> Plan:
    """``current`` with these steps, as version + 1 (validated: still an ordered DAG)."""
    return Plan.model_validate({**dict(current), "version": current.version + 1, "steps": steps})


def _check_role(current: Plan, step_id: str, role: str | None) -> None:
    if role is None or role not in current.personas:
        known = list(current.personas)
        raise PlanError(
            f"step '{step_id}' needs one of the crew's roles, got {role!r}" + suggest(role or "", known)
        )


def ready_steps(current: Plan, done: Set[str]) -> list[Step]:
    """Steps not done whose dependencies are all done and which have a role, in plan order."""
    return [
        s
        for s in current.steps
        if s.id not in done and s.role is not None and all(d in done for d in s.depends_on)
    ]


def final_step_ids(current: Plan) -> list[str]:
    """Steps no other step depends on (reviews aside): their outputs are the job's result."""
    needed: set[str] = set()
    for step in counted_steps(current.steps):
        needed.update(step.depends_on)
    return [s.id for s in counted_steps(current.steps) if s.id not in needed]


def unassigned_step_ids(current: Plan) -> list[str]:
    """Steps waiting for the manager to give them a role."""
    return [s.id for s in current.steps if s.role is None]
