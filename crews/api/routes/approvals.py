"""Approvals: the tool calls of a job that wait for a person (``approval: required``), and the decision."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from crews.api.deps import Deps
from crews.api.models import ErrorBody
from crews.jobs.approvals import Approval, decide, list_approvals

router = APIRouter(tags=["jobs"])

_404: dict[str, Any] = {"model": ErrorBody, "description": "No such job, or no such approval in it."}


class ApprovalList(BaseModel):
    approvals: list[Approval]


class Decision(BaseModel):
    approve: bool = Field(
        description="true: the tool runs with the arguments shown; false: the model is told no."
    )
    comment: str = Field("", max_length=2000, description="Passed to the model with a denial.")


@router.get("/jobs/{job}/approvals", responses={404: _404})
async def get_approvals(job: str, deps: Deps) -> ApprovalList:
    """Tool calls of the job that need (or had) a person's approval; pending ones pause their step."""
    return ApprovalList(approvals=await list_approvals(deps.store, job))


@router.post(
    "/jobs/{job}/approvals/{approval}",
    responses={404: _404, 409: {"model": ErrorBody, "description": "Already decided, or the job has ended."}},
)
async def post_decision(job: str, approval: str, decision: Decision, deps: Deps) -> Approval:
    """Approve or deny one waiting tool call; its step resumes at once."""
    return await decide(deps.js, deps.store, job, approval, decision.approve, decision.comment)
