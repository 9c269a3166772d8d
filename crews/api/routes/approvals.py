"""Approvals: the tool calls of a job that wait for a person, and the decisions (who, when, why)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from bus.contracts.approvals import ApprovalRecord
from crews.api.deps import Decider, Deps, Reader
from crews.api.models import ErrorBody
from crews.jobs.approvals import decide, list_approvals
from crews.jobs.control import owned_job

router = APIRouter(tags=["jobs"])

_404: dict[str, Any] = {"model": ErrorBody, "description": "No such job, or no such approval in it."}


class ApprovalList(BaseModel):
    approvals: list[ApprovalRecord]


class Decision(BaseModel):
    approve: bool = Field(
        description="true: the tool runs with exactly the arguments shown; false: the model is told no."
    )
    comment: str = Field(
        "", max_length=2000, description="Why; recorded, and passed to the model with a denial."
    )
    arguments_sha256: str | None = Field(
        None,
        pattern="^[0-9a-f]{64}$",
        description="The digest of the call you looked at (from the approval): the decision is refused "
        "if the waiting call is not that one.",
    )


@router.get("/jobs/{job}/approvals", responses={404: _404})
async def get_approvals(job: str, deps: Deps, caller: Reader) -> ApprovalList:
    """Tool calls of your job that need (or had) a person's approval; pending ones pause their step."""
    await owned_job(deps.store, job, caller)
    return ApprovalList(approvals=await list_approvals(deps.store, job))


@router.post(
    "/jobs/{job}/approvals/{approval}",
    responses={
        404: _404,
        409: {"model": ErrorBody, "description": "Already decided, other arguments, or the job has ended."},
    },
)
async def post_decision(
    job: str, approval: str, decision: Decision, deps: Deps, caller: Decider
) -> ApprovalRecord:
    """Approve or deny one waiting tool call of your job; its step resumes at once (who decided is recorded)."""
    await owned_job(deps.store, job, caller)
    return await decide(
        deps.js,
        deps.store,
        job,
        approval,
        decision.approve,
        decision.comment,
        decided_by=caller.name,
        arguments_sha256=decision.arguments_sha256,
    )
