"""The hierarchical manager's loop, as plan changes: assign, review each result, apply each decision. Pure.

``manage`` takes a plan and the results so far and returns the next plan (one
version + 1 per change) and the decisions it applied:

1. once the first manager step (``_manager``) answered, every unassigned task
   gets its member (``assign_roles``);
2. every review with a result whose decision is not applied yet is applied, in
   plan order: ``accept`` lets the steps after it run; ``revise`` inserts a new
   attempt of the reviewed task (``_try<n>-<task>``) with the manager's feedback
   in its prompt and the previous answer in its context, and the steps that
   waited for the reviewed step wait for the new attempt instead; ``delegate``
   adds a further task for a named member (``_delegated-<step>``,
   ``add_steps``) that receives the reviewed result;
3. every member step with a result and no review yet gets a review step
   (``_review-<step>``, the manager's role) right after it; the steps that
   waited for the member step wait for its review too.

Every id derives from the step it is about, so applying the same results to
the same plan gives the same plan and the same decisions: a coordinator that
does it again (after a crash, or beside another) changes nothing twice.
``max_steps`` counts member steps, not reviews; a decision that would run one
more step than it allows stops the job (``ManagerStopped``). A decision that
does not fit (no feedback to send back, a member that is not in the team)
fails the job too (``ManagerError``): the worker already asked the model once
to repair an answer that did not match the schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from bus.contracts.events import DecisionKind, ManagerDecision
from bus.contracts.result import StepResult
from crews.errors import ManagerError, ManagerStopped
from crews.plan.planner import (
    MANAGER_STEP,
    Plan,
    Step,
    add_steps,
    assign_roles,
    counted_steps,
    next_version,
)

__all__ = ["ManagerAnswer", "decision_schema", "manage", "team"]

FEEDBACK = (
    "\n\nThe manager sent your previous answer (in the context) back with this feedback:\n{feedback}\n"
    "Give a new complete answer to the task that addresses it."
)


class ManagerAnswer(BaseModel):
    """What a review step answers (its ``output_schema`` is ``decision_schema``)."""

    model_config = ConfigDict(extra="forbid")

    decision: DecisionKind
    feedback: str = ""
    member: str | None = None
    description: str = ""
    expected_output: str = ""

    @model_validator(mode="after")
    def _complete(self) -> ManagerAnswer:
        if self.decision == "revise" and not self.feedback.strip():
            raise ValueError("a 'revise' decision needs feedback that says what to change")
        if self.decision == "delegate" and not (self.member and self.description.strip()):
            raise ValueError("a 'delegate' decision needs a member and a task description")
        return self


def team(plan: Plan, manager: str) -> list[str]:
    """The members the manager may give work to: every role but its own."""
    return [key for key in plan.personas if key != manager]


def decision_schema(members: list[str]) -> dict[str, Any]:
    """A strict JSON schema (every field required, nothing else) for one review's decision."""
    text = {"type": "string"}
    return {
        "type": "object",
        "properties": {
            "decision": {"type": "string", "enum": ["accept", "revise", "delegate"]},
            "feedback": {**text, "description": "revise: what to change; delegate: why; accept: ''"},
            "member": {
                "type": ["string", "null"],
                "enum": [*members, None],
                "description": "delegate: the team member who does the further task; otherwise null",
            },
            "description": {**text, "description": "delegate: the further task; otherwise ''"},
            "expected_output": {**text, "description": "delegate: what it should produce; otherwise ''"},
        },
        "required": ["decision", "feedback", "member", "description", "expected_output"],
        "additionalProperties": False,
    }


def manage(
    current: Plan, results: Mapping[str, StepResult], manager: str
) -> tuple[Plan, list[ManagerDecision]]:
    """The plan after the manager's assignment, decisions and reviews that ``results`` make due."""
    updated = _assign(current, results)
    decisions: list[ManagerDecision] = []
    for review in [s for s in updated.steps if s.kind == "review" and s.decision is None]:
        if review.id in results:
            updated, decision = _apply(updated, review, results[review.id], manager)
            decisions.append(decision)
    return _add_reviews(updated, results, manager), decisions


def _assign(current: Plan, results: Mapping[str, StepResult]) -> Plan:
    answer = results.get(MANAGER_STEP)
    if answer is None or all(step.role is not None for step in current.steps):
        return current
    if not isinstance(answer.data, dict):
        raise ManagerError(f"the manager's assignment is not a JSON object: {answer.output[:200]!r}")
    return assign_roles(current, {str(k): str(v) for k, v in answer.data.items()})


def _add_reviews(current: Plan, results: Mapping[str, StepResult], manager: str) -> Plan:
    reviewed = {s.reviews for s in current.steps if s.kind == "review"}
    due = [s for s in current.steps if s.kind in ("task", "added") and s.id in results]
    due = [s for s in due if s.id not in reviewed]
    if not due:
        return current
    steps = list(current.steps)
    for step in due:
        review = _review(current, step, manager)
        steps.insert(steps.index(step) + 1, review)
        steps = [_also_wait(s, step.id, review.id) for s in steps]
    return next_version(current, steps)


def _also_wait(step: Step, done: str, review: str) -> Step:
    if done not in step.depends_on or step.id == review:
        return step
    return step.model_copy(update={"depends_on": [*step.depends_on, review]})


def _review(current: Plan, step: Step, manager: str) -> Step:
    assert step.role is not None, f"step {step.id} ran without a role"
    persona = current.personas[step.role]
    members = "\n".join(
        f"- {key}: {current.personas[key].role}. {current.personas[key].goal}"
        for key in team(current, manager)
    )
    left = "" if current.max_steps is None else f"\nSteps the job may still add: {_room(current)}."
    description = (
        f"Review the result of step '{step.id}', done by {step.role} ({persona.role}); it is in the context.\n"
        f"The task was:\n{step.description}\nExpected output: {step.expected_output}\n"
        "Decide one of:\n"
        "- accept: the result is good enough;\n"
        f"- revise: send it back to {step.role} with feedback that says what to change;\n"
        "- delegate: give a further task to one team member (member, description, expected_output).\n"
        f"Team:\n{members}{left}"
    )
    return Step(
        id=f"_review-{step.id}",
        kind="review",
        role=manager,
        reviews=step.id,
        description=description,
        expected_output="Your decision as one JSON object.",
        depends_on=[step.id],
        context=[step.id],
        added_in=current.version + 1,
    )


def _room(current: Plan) -> int:
    return (current.max_steps or 0) - len(counted_steps(current.steps))


def _apply(current: Plan, review: Step, result: StepResult, manager: str) -> tuple[Plan, ManagerDecision]:
    assert review.reviews is not None
    done = current.step(review.reviews)
    try:
        answer = ManagerAnswer.model_validate(result.data)
    except ValidationError as exc:
        problems = "; ".join(e["msg"] for e in exc.errors())
        raise ManagerError(f"the manager's decision in step '{review.id}' is unusable: {problems}") from exc
    if answer.decision != "accept" and current.max_steps is not None and _room(current) < 1:
        raise ManagerStopped(
            f"the manager's decision in step '{review.id}' ({answer.decision} {done.id}) needs one more step, "
            f"but the plan already has the {current.max_steps} steps budgets.max_steps allows: the job stops "
            "here (raise budgets.max_steps to give the manager more rounds)"
        )
    if answer.decision == "delegate" and answer.member not in team(current, manager):
        raise ManagerError(
            f"the manager's decision in step '{review.id}' delegates to {answer.member!r}, who is not in the "
            f"team ({', '.join(team(current, manager))})"
        )
    member = answer.member if answer.decision == "delegate" and answer.member else str(done.role)
    decision = ManagerDecision(
        review=review.id,
        step=done.id,
        decision=answer.decision,
        member=member,
        feedback=answer.feedback.strip(),
        new_step=_new_step_id(current, done, answer.decision),
    )
    decided = [s.model_copy(update={"decision": decision}) if s.id == review.id else s for s in current.steps]
    marked = Plan.model_validate({**dict(current), "steps": decided})
    if answer.decision == "accept":
        return next_version(current, decided), decision
    if answer.decision == "delegate":
        further = Step(
            id=str(decision.new_step),
            kind="added",
            role=member,
            description=answer.description.strip(),
            expected_output=answer.expected_output.strip(),
            depends_on=[done.id, review.id],
            context=[done.id],
        )
        return add_steps(marked, [further]), decision
    return _revise(marked, review, done, decision), decision


def _new_step_id(current: Plan, done: Step, decision: DecisionKind) -> str | None:
    if decision == "accept":
        return None
    if decision == "delegate":
        return f"_delegated-{done.id}"
    root, tries = done, 1
    while root.revises is not None:
        root, tries = current.step(root.revises), tries + 1
    return f"_try{tries + 1}-{root.id}"


def _revise(current: Plan, review: Step, done: Step, decision: ManagerDecision) -> Plan:
    """A new attempt of ``done`` right after its review; who waited for ``done`` waits for it instead."""
    root = done
    while root.revises is not None:
        root = current.step(root.revises)
    attempt = done.model_copy(
        update={
            "id": decision.new_step,
            "revises": done.id,
            "description": root.description + FEEDBACK.format(feedback=decision.feedback),
            "depends_on": [*done.depends_on, done.id, review.id],
            "context": [*root.context, done.id],
            "added_in": current.version + 1,
        }
    )
    steps: list[Step] = []
    for step in current.steps:
        if done.id in step.depends_on and step.id not in (review.id, attempt.id):
            step = step.model_copy(
                update={
                    "depends_on": [attempt.id if d == done.id else d for d in step.depends_on],
                    "context": [attempt.id if c == done.id else c for c in step.context],
                }
            )
        steps.append(step)
        if step.id == review.id:
            steps.append(attempt)
    return next_version(current, steps)
