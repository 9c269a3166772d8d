"""The hierarchical manager's loop as plan changes (``crews.plan.manager``): pure, no servers."""

from __future__ import annotations

from typing import Any

import pytest

from bus.contracts.result import StepResult
from crews.errors import ManagerError, ManagerStopped
from crews.plan.manager import decision_schema, manage
from crews.plan.planner import MANAGER_STEP, Plan, final_step_ids, plan, ready_steps
from crews.plan.step_work import plan_step_work
from crews.spec.load import load_crew_text
from crews.spec.models import CrewSpec

CREW = """\
name: party
process: hierarchical
manager: lead
roles:
  lead: {role: Lead, goal: Plan the party}
  cook: {role: Cook, goal: Cook}
  writer: {role: Writer, goal: Write}
tasks:
  shop: {description: Buy food, expected_output: A list}
  invite: {description: Write an invitation, expected_output: A note, agent: writer}
budgets: {max_steps: 5}
"""


def result(step: str, data: Any = None, output: str = "done") -> StepResult:
    return StepResult(step=step, role="x", output=output, data=data)


def decide(decision: str, **fields: Any) -> dict[str, Any]:
    base = {"decision": decision, "feedback": "", "member": None, "description": "", "expected_output": ""}
    return {**base, **fields}


def run(spec: CrewSpec, steps: dict[str, Any]) -> tuple[Plan, list[Any], dict[str, StepResult]]:
    """Feed results one at a time, as a coordinator sees them; the plan and every decision on the way."""
    current, decisions, results = plan(spec, {}), [], {}
    for step, data in steps.items():
        results[step] = result(step, data)
        current, applied = manage(current, results, "lead")
        decisions += applied
    return current, decisions, results


@pytest.fixture
def spec() -> CrewSpec:
    return load_crew_text(CREW, "party.yaml")


def test_every_result_gets_a_review_and_accepting_lets_the_next_step_run(spec: CrewSpec) -> None:
    current, _, results = run(spec, {MANAGER_STEP: {"shop": "cook"}, "shop": None})
    assert [s.id for s in current.steps] == [MANAGER_STEP, "shop", "_review-shop", "invite"]
    assert current.step("invite").depends_on == ["shop", "_review-shop"]
    assert [s.id for s in ready_steps(current, set(results))] == ["_review-shop"]
    review = plan_step_work("j", spec, current, current.step("_review-shop"), results)
    assert (review.role, [c.step for c in review.context]) == ("lead", ["shop"])
    assert review.output_schema == decision_schema(["cook", "writer"])

    results["_review-shop"] = result("_review-shop", decide("accept"))
    accepted, applied = manage(current, results, "lead")
    assert [(d.decision, d.step, d.member) for d in applied] == [("accept", "shop", "cook")]
    assert accepted.version == current.version + 1
    assert [s.id for s in ready_steps(accepted, set(results))] == ["invite"]
    assert manage(accepted, results, "lead") == (accepted, [])  # applied once: a repeat changes nothing


def test_revise_inserts_a_new_attempt_with_the_feedback_and_rewires_what_waited(spec: CrewSpec) -> None:
    current, decisions, results = run(
        spec,
        {MANAGER_STEP: {"shop": "cook"}, "shop": None, "_review-shop": decide("revise", feedback="Add tea")},
    )
    assert [(d.decision, d.new_step) for d in decisions] == [("revise", "_try2-shop")]
    attempt = current.step("_try2-shop")
    assert (attempt.role, attempt.task, attempt.revises) == ("cook", "shop", "shop")
    assert attempt.description.startswith("Buy food") and "Add tea" in attempt.description
    assert attempt.context == ["shop"]  # the previous answer
    assert current.step("invite").context == ["_try2-shop"]
    assert [s.id for s in ready_steps(current, set(results))] == ["_try2-shop"]
    assert final_step_ids(current) == ["invite"]

    again, decisions, _ = run(
        spec,
        {
            MANAGER_STEP: {"shop": "cook"},
            "shop": None,
            "_review-shop": decide("revise", feedback="Add tea"),
            "_try2-shop": None,
            "_review-_try2-shop": decide("revise", feedback="Add cake"),
        },
    )
    third = again.step("_try3-shop")
    assert "Add cake" in third.description and "Add tea" not in third.description
    assert third.context == ["_try2-shop"]


def test_delegate_adds_a_further_task_for_the_named_member(spec: CrewSpec) -> None:
    further = decide("delegate", member="writer", description="Write a menu", expected_output="A menu")
    current, decisions, results = run(
        spec, {MANAGER_STEP: {"shop": "cook"}, "shop": None, "_review-shop": further}
    )
    step = current.step("_delegated-shop")
    assert (step.kind, step.role, step.context, step.description) == (
        "added",
        "writer",
        ["shop"],
        "Write a menu",
    )
    assert step.added_in == current.version
    assert decisions[0].new_step == "_delegated-shop"
    assert {s.id for s in ready_steps(current, set(results))} == {"invite", "_delegated-shop"}


def test_a_decision_past_max_steps_stops_the_job_with_the_reason(spec: CrewSpec) -> None:
    loop = decide("revise", feedback="Again")
    steps = {MANAGER_STEP: {"shop": "cook"}, "shop": None, "_review-shop": loop, "_try2-shop": None}
    current, _, results = run(spec, steps)  # manager, shop, _try2-shop, invite: 4 of 5 steps
    results["_review-_try2-shop"] = result("_review-_try2-shop", loop)
    more, _ = manage(current, results, "lead")  # the 5th step: _try3-shop
    results["_try3-shop"] = result("_try3-shop")
    more, _ = manage(more, results, "lead")
    results["_review-_try3-shop"] = result("_review-_try3-shop", loop)
    with pytest.raises(ManagerStopped, match=r"already has the 5 steps budgets\.max_steps allows"):
        manage(more, results, "lead")


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (decide("delegate", member="ghost", description="Haunt"), "'ghost', who is not in the team"),
        (decide("revise"), "a 'revise' decision needs feedback"),
        ({"decision": "maybe"}, "Input should be 'accept', 'revise' or 'delegate'"),
    ],
)
def test_an_unusable_decision_is_a_clear_error(spec: CrewSpec, answer: Any, message: str) -> None:
    with pytest.raises(ManagerError, match=message):
        run(spec, {MANAGER_STEP: {"shop": "cook"}, "shop": None, "_review-shop": answer})
