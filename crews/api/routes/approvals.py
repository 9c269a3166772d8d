"""Approvals: the tool calls of a job that wait for a person, and the decisions (who, when, why)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from bus.contracts.approvals import ApprovalRecord
from crews.api.deps import Deps
from crews.api.models import ErrorBody
from crews.jobs.approvals import decide, list_approvals

router = APIRouter(tags=["jobs"])

_404: dict[str, Any] = {"model": ErrorBody, "description": "No such job, or no such approval in it."}
ANONYMOUS_PRINCIPAL = "api-key"
"""Who decided, when the request's API key names no principal."""


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


def principal_of(request: Request) -> str:
    """The principal name the authentication put on the request, else ``api-key``."""
    principal = getattr(request.state, "principal", None)
    name = getattr(principal, "name", principal)
    return name if isinstance(name, str) and name else ANONYMOUS_PRINCIPAL


@router.get("/jobs/{job}/approvals", responses={404: _404})
async def get_approvals(job: str, deps: Deps) -> ApprovalList:
    """Tool calls of the job that need (or had) a person's approval; pending ones pause their step."""
    return ApprovalList(approvals=await list_approvals(deps.store, job))


@router.post(
    "/jobs/{job}/approvals/{approval}",
    responses={
        404: _404,
        409: {"model": ErrorBody, "description": "Already decided, other arguments, or the job has ended."},
    },
)
async def post_decision(
    job: str, approval: str, decision: Decision, request: Request, deps: Deps
) -> ApprovalRecord:
    """Approve or deny one waiting tool call; its step resumes at once."""
    return await decide(
        deps.js,
        deps.store,
        job,
        approval,
        decision.approve,
        decision.comment,
        decided_by=principal_of(request),
        arguments_sha256=decision.arguments_sha256,
    )
