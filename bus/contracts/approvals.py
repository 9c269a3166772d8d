"""The approval record: one tool call waiting for, or given, a person's decision.

Roles write it (pending) into the job's approvals hash (``StepKeys.approvals``,
field = the approval id); the API reads it and records the decision. An
approval is bound to the tool and the sha256 of its canonical arguments
(``canonical_arguments``: sorted keys, no spaces, UTF-8 JSON): the worker runs
a call only when an approved record's digest is the digest of the call in hand,
so a reused call id with other arguments never runs under an old decision.

An approval lets one call run: the worker that runs an approved call claims
the record with the call's idempotency key (``used_by``), so a later call
under the same call id, even with the same arguments (a model that repeats
itself, or is made to), is asked for again; only a redelivery of the same
call (same key) finds its decision.

Approval ids: ``<step>:<call id>`` for the first call under a call id; a later
call under the same id with other arguments, or after the first one ran, is
asked for again as ``<step>:<call id>:<first 12 hex of a digest of its
arguments' digest and its idempotency key>``.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any, Literal

from pydantic import BaseModel, Field

Decision = Literal["pending", "approved", "denied"]


def canonical_arguments(arguments: dict[str, Any]) -> str:
    """The arguments as one canonical JSON text: sorted keys, compact separators, UTF-8."""
    return json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def arguments_digest(tool: str, arguments: dict[str, Any]) -> str:
    """sha256 (hex) of the tool name and its canonical arguments: what an approval is bound to."""
    text = f"{tool}\n{canonical_arguments(arguments)}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def approval_id(step: str, call_id: str, digest: str | None = None) -> str:
    """``<step>:<call id>``, or with ``digest``: ``<step>:<call id>:<digest[:12]>`` (a reused call id)."""
    return f"{step}:{call_id}" if digest is None else f"{step}:{call_id}:{digest[:12]}"


def reuse_digest(arguments_sha256: str, use: str) -> str:
    """What names the approval of a call that reuses a call id: its arguments' digest and its key."""
    return hashlib.sha256(f"{arguments_sha256}\n{use}".encode()).hexdigest()


class ApprovalRecord(BaseModel):
    """One tool call of a step that needs a person's decision, and the decision once made."""

    id: str
    step: str
    role: str
    tool: str = Field(description="the tool's name as the crew file names it, e.g. payments.refund")
    call_id: str = Field(description="the model's id of the tool call")
    arguments: dict[str, Any]
    arguments_sha256: str = Field(description="sha256 of the tool name and its canonical arguments")
    status: Decision = "pending"
    requested_at: float = Field(default_factory=time.time, description="unix time the call was recorded")
    decided_by: str | None = Field(None, description="who decided: the API key's principal, or 'api-key'")
    decided_at: float | None = None
    comment: str = ""
    used_by: str | None = Field(
        None,
        description="the idempotency key of the call that ran under this approval (it lets one call run)",
    )

    def binds(self, tool: str, arguments: dict[str, Any]) -> bool:
        """Whether this record is for exactly this tool and these arguments."""
        return self.tool == tool and self.arguments_sha256 == arguments_digest(tool, arguments)


def pending_record(
    *, step: str, role: str, tool: str, call_id: str, arguments: dict[str, Any], reused_by: str | None = None
) -> ApprovalRecord:
    """The record a worker writes for a call that needs approval (``reused_by``: the call's key, its id was taken)."""
    digest = arguments_digest(tool, arguments)
    return ApprovalRecord(
        id=approval_id(step, call_id, None if reused_by is None else reuse_digest(digest, reused_by)),
        step=step,
        role=role,
        tool=tool,
        call_id=call_id,
        arguments=arguments,
        arguments_sha256=digest,
    )
