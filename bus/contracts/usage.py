"""The job's usage hash: ``<role>:input_tokens``, ``<role>:output_tokens``, ``<role>:calls`` → integers.

Roles add to it after every LLM call (``usage_increments``); the job store and
the budget check read it (``parse_usage``, ``used_tokens``).
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel

METRICS = ("input_tokens", "output_tokens", "calls")
TOKEN_METRICS = ("input_tokens", "output_tokens")


class RoleUsage(BaseModel):
    """A role's LLM use in one job."""

    input_tokens: int = 0
    output_tokens: int = 0
    calls: int = 0


def usage_field(role: str, metric: str) -> str:
    """The hash field of one metric of one role."""
    return f"{role}:{metric}"


def usage_increments(role: str, input_tokens: int, output_tokens: int, calls: int = 1) -> dict[str, int]:
    """The ``HINCRBY``s one LLM call makes."""
    return {
        usage_field(role, "input_tokens"): input_tokens,
        usage_field(role, "output_tokens"): output_tokens,
        usage_field(role, "calls"): calls,
    }


def parse_usage(raw: Mapping[str, str]) -> dict[str, RoleUsage]:
    """The usage hash as read from Redis → usage per role (unknown fields are ignored)."""
    per_role: dict[str, dict[str, int]] = {}
    for field, value in raw.items():
        role, _, metric = field.rpartition(":")
        if role and metric in METRICS:
            per_role.setdefault(role, {})[metric] = int(value)
    return {role: RoleUsage.model_validate(metrics) for role, metrics in per_role.items()}


def used_tokens(raw: Mapping[str, str]) -> int:
    """Input plus output tokens of every role in the usage hash."""
    return sum(u.input_tokens + u.output_tokens for u in parse_usage(raw).values())
