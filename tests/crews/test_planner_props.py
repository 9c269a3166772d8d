"""The planner, by its properties over generated crews, and by example for its errors."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from crews.errors import PlanError
from crews.plan.planner import (
    MANAGER_STEP,
    Plan,
    Step,
    add_steps,
    assign_roles,
    final_step_ids,
    interpolate,
    plan,
    ready_steps,
    unassigned_step_ids,
)
from crews.spec.dump import dump_crew
from crews.spec.load import load_crew_text
from crews.spec.models import CrewSpec

NAMES = st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True)


@st.composite
def crew_files(draw: st.DrawFn) -> str:
    """The text of a valid crew file: any process, any acyclic context, optional agents when hierarchical."""
    process = draw(st.sampled_from(["sequential", "parallel", "hierarchical"]))
    roles = draw(st.lists(NAMES, min_size=1, max_size=3, unique=True))
    tasks = draw(st.lists(NAMES, min_size=1, max_size=8, unique=True))
    rank = draw(st.permutations(range(len(tasks))))  # parallel: any DAG, not only file order
    task_data: dict[str, Any] = {}
    for i, key in enumerate(tasks):
        before = [t for j, t in enumerate(tasks) if (rank[j] < rank[i] if process == "parallel" else j < i)]
        entry: dict[str, Any] = {"description": f"Do {key} about {{topic}}", "expected_output": "Something"}
        if process != "hierarchical" or draw(st.booleans()):
            entry["agent"] = draw(st.sampled_from(roles))
        if draw(st.booleans()):
            entry["context"] = draw(st.lists(st.sampled_from(before), unique=True)) if before else []
        task_data[key] = entry
    data: dict[str, Any] = {
        "name": "generated",
        "process": process,
        "inputs": {"topic": {"default": "bees"}},
        "roles": {r: {"role": r.title(), "goal": f"Help with {{topic}} as {r}"} for r in roles},
        "tasks": task_data,
    }
    if process == "hierarchical":
        data["manager"] = roles[0]
    return yaml.safe_dump(data, sort_keys=False)


def _assert_dag_in_order(result: Plan) -> None:
    position = {step.id: i for i, step in enumerate(result.steps)}
    assert len(position) == len(result.steps), "step ids are unique"
    for step in result.steps:
        for dep in step.depends_on:
            assert position[dep] < position[step.id], f"{dep} comes before {step.id}"
        assert set(step.context) <= set(step.depends_on)


def _assert_acyclic(result: Plan) -> None:
    graph = {s.id: s.depends_on for s in result.steps}
    state: dict[str, int] = {}

    def visit(node: str) -> None:
        assert state.get(node) != 1, f"cycle through {node}"
        if state.get(node) == 2:
            return
        state[node] = 1
        for dep in graph[node]:
            visit(dep)
        state[node] = 2

    for node in graph:
        visit(node)


@settings(max_examples=300, deadline=None)
@given(crew_files())
def test_plan_is_an_acyclic_dag_in_dependency_order(text: str) -> None:
    result = plan(load_crew_text(text), {})
    _assert_acyclic(result)
    _assert_dag_in_order(result)


@settings(max_examples=300, deadline=None)
@given(crew_files())
def test_every_task_appears_exactly_once(text: str) -> None:
    spec = load_crew_text(text)
    result = plan(spec, {})
    assert Counter(s.task for s in result.steps if s.kind == "task") == Counter(list(spec.tasks))
    assert [s.id for s in result.steps if s.kind == "manager"] == (
        [MANAGER_STEP] if spec.process == "hierarchical" else []
    )


@settings(max_examples=200, deadline=None)
@given(crew_files(), NAMES)
def test_ids_are_stable_across_reloads(text: str, extra: str) -> None:
    spec = load_crew_text(text)
    first = plan(spec, {})
    assert plan(load_crew_text(text), {}) == first
    assert plan(load_crew_text(dump_crew(spec)), {}) == first
    assert plan(CrewSpec.model_validate(spec.model_dump(mode="json")), {}) == first
    assert [s.id for s in first.steps if s.task] == [s.task for s in first.steps if s.task]
    # adding a task changes no other step's id
    data = yaml.safe_load(text)
    if extra not in data["tasks"]:
        data["tasks"][extra] = {
            "description": "More",
            "expected_output": "More",
            "agent": next(iter(data["roles"])),
        }
        grown = plan(load_crew_text(yaml.safe_dump(data, sort_keys=False)), {})
        assert {s.id for s in first.steps} <= {s.id for s in grown.steps}


@settings(max_examples=200, deadline=None)
@given(crew_files())
def test_dependencies_follow_the_process(text: str) -> None:
    spec = load_crew_text(text)
    result = plan(spec, {})
    keys = list(spec.tasks)
    for step in (s for s in result.steps if s.task):
        declared = spec.tasks[step.id].context
        if spec.process == "parallel":
            assert step.depends_on == step.context == (declared or [])
            continue
        index = keys.index(step.id)
        previous = keys[index - 1] if index else None
        assert step.context == (declared if declared is not None else [previous] if previous else [])
        if previous:
            assert previous in step.depends_on  # tasks run in file order, as in CrewAI
        elif spec.process == "hierarchical":
            assert step.depends_on == [MANAGER_STEP]
    if spec.process == "sequential":
        assert final_step_ids(result) == [keys[-1]]


def _run(result: Plan) -> list[str]:
    """Run a plan to the end the way a coordinator would: ready steps, the manager assigning roles."""
    done: list[str] = []
    while len(done) < len(result.steps):
        if MANAGER_STEP in done and (waiting := unassigned_step_ids(result)):
            result = assign_roles(result, {step: next(iter(result.personas)) for step in waiting})
        ready = ready_steps(result, set(done))
        assert ready, f"stuck after {done}"
        assert not {s.id for s in ready} & set(done)
        done += [s.id for s in ready]
    return done


@settings(max_examples=200, deadline=None)
@given(crew_files())
def test_ready_steps_run_every_step_once_after_its_dependencies(text: str) -> None:
    result = plan(load_crew_text(text), {})
    order = _run(result)
    assert sorted(order) == sorted(s.id for s in result.steps)
    for step in result.steps:
        assert all(order.index(d) < order.index(step.id) for d in step.depends_on)


@settings(max_examples=200, deadline=None)
@given(crew_files(), st.data())
def test_added_steps_keep_the_plan_a_dag(text: str, data: st.DataObject) -> None:
    result = plan(load_crew_text(text), {})
    known = [s.id for s in result.steps]
    new: list[Step] = []
    for i in range(data.draw(st.integers(1, 4))):
        deps = data.draw(st.lists(st.sampled_from(known), unique=True, max_size=3))
        role = data.draw(st.sampled_from(list(result.personas)))
        new.append(Step(id=f"_added-{i}", kind="added", role=role, description="More", expected_output="More",
                        depends_on=deps, context=deps[:1]))  # fmt: skip
        known.append(f"_added-{i}")
    grown = add_steps(result, new)
    assert grown.version == result.version + 1
    assert grown.steps[: len(result.steps)] == result.steps
    _assert_dag_in_order(grown)
    needed = {d for s in grown.steps for d in s.depends_on}
    assert final_step_ids(grown) == [s.id for s in grown.steps if s.id not in needed]


HIERARCHICAL = """\
name: party
process: hierarchical
manager: lead
inputs:
  guests: {type: integer}
  food: {type: array, default: [cake, tea]}
roles:
  lead:
    role: Lead
    goal: Plan a party for {guests}
  cook:
    role: Cook
    goal: Cook
tasks:
  shop:
    description: Buy {food} for {guests} guests
    expected_output: A list
  bake:
    description: Bake
    expected_output: A cake
    agent: cook
budgets:
  max_steps: 4
"""


def test_hierarchical_plan_starts_with_the_manager_and_interpolates_json() -> None:
    result = plan(load_crew_text(HIERARCHICAL), {"guests": 6})
    assert [(s.id, s.kind, s.role, s.depends_on) for s in result.steps] == [
        (MANAGER_STEP, "manager", "lead", []),
        ("shop", "task", None, [MANAGER_STEP]),
        ("bake", "task", "cook", ["shop"]),
    ]
    assert result.step("shop").description == 'Buy ["cake", "tea"] for 6 guests'
    assert result.personas["lead"].goal == "Plan a party for 6"
    assert "- shop (unassigned): Buy" in result.step(MANAGER_STEP).description
    assert ready_steps(result, {MANAGER_STEP}) == []  # shop waits for its role
    assigned = assign_roles(result, {"shop": "cook"})
    assert assigned.version == 2
    assert [s.id for s in ready_steps(assigned, {MANAGER_STEP})] == ["shop"]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({}, "crew 'party' is missing input 'guests'"),
        ({"gests": 3}, "crew 'party' is missing input 'guests'; 'gests' was given: did you mean 'guests'?"),
        ({"guests": "six"}, "input 'guests' must be a whole number (type: integer), got the text 'six'"),
        ({"guests": True}, "input 'guests' must be a whole number (type: integer), got true"),
        ({"guests": 2, "food": "cake"}, "input 'food' must be a list (type: array), got the text 'cake'"),
    ],
)
def test_inputs_that_do_not_fit(inputs: dict[str, Any], message: str) -> None:
    with pytest.raises(PlanError) as caught:
        plan(load_crew_text(HIERARCHICAL), inputs)
    assert str(caught.value) == message


def test_interpolating_a_missing_value_names_it() -> None:
    with pytest.raises(PlanError, match=r"^\{topc\} has no value; did you mean 'topic'\?$"):
        interpolate("About {topc}", {"topic": "bees"})
    assert interpolate('Keep {"json": 1} and {n}', {"n": 2.5}) == 'Keep {"json": 1} and 2.5'


def _added(step_id: str, role: str | None = "cook", depends_on: list[str] | None = None) -> Step:
    return Step(
        id=step_id, kind="added", role=role, description="d", expected_output="e", depends_on=depends_on or []
    )


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([_added("bake")], "step 'bake' is already in the plan"),
        ([_added("x", depends_on=["shpo"])], "step 'x' depends on unknown step 'shpo'; did you mean 'shop'?"),
        ([_added("x", role="baker")], "step 'x' needs one of the crew's roles, got 'baker'"),
        ([_added("x", role=None)], "step 'x' needs one of the crew's roles, got None"),
        (
            [Step(id="x", role="cook", description="d", expected_output="e")],
            "step 'x': an added step has kind 'added' and no task",
        ),
        ([_added("x"), _added("y")], "adding 2 steps would make 5, over the budget of 4"),
    ],
)
def test_add_steps_refuses(steps: list[Step], message: str) -> None:
    with pytest.raises(PlanError) as caught:
        add_steps(plan(load_crew_text(HIERARCHICAL), {"guests": 2}), steps)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("roles", "message"),
    [
        ({"shpo": "cook"}, "unknown step 'shpo'; did you mean 'shop'?"),
        ({"bake": "lead"}, "step 'bake' is already assigned to 'cook'"),
        ({"shop": "chef"}, "step 'shop' needs one of the crew's roles, got 'chef'"),
    ],
)
def test_assign_roles_refuses(roles: dict[str, str], message: str) -> None:
    with pytest.raises(PlanError) as caught:
        assign_roles(plan(load_crew_text(HIERARCHICAL), {"guests": 2}), roles)
    assert str(caught.value).startswith(message)


def test_step_ids_must_be_nats_tokens() -> None:
    with pytest.raises(ValueError, match="cannot be a step id"):
        _added("two words")
