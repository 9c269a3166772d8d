"""The job's usage hash: ``<role>:input_tokens``, ``<role>:output_tokens``, ``<role>:calls`` (integers)
and ``<role>:cost_usd`` (a float, USD at the operator's prices).

Roles add to it after every LLM call, every attempt counted
(``usage_increments``, ``cost_field``); the job store and the budget checks
read it (``parse_usage``, ``used``).
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel

METRICS = ("input_tokens", "output_tokens", "calls", "cost_usd")
TOKEN_METRICS = ("input_tokens", "output_tokens")


class RoleUsage(BaseModel):
    """A role's LLM use in one job."""

    input_tokens: int = 0
    output_tokens: int = 0
    calls: int = 0
    cost_usd: float = 0.0


def usage_field(role: str, metric: str) -> str:
    """The hash field of one metric of one role."""
    return f"{role}:{metric}"


def cost_field(role: str) -> str:
    """The hash field of a role's cost (``HINCRBYFLOAT``)."""
    return usage_field(role, "cost_usd")


def usage_increments(role: str, input_tokens: int, output_tokens: int, calls: int = 1) -> dict[str, int]:
    """The ``HINCRBY``s one LLM call makes."""
    return {
        usage_field(role, "input_tokens"): input_tokens,
        usage_field(role, "output_tokens"): output_tokens,
        usage_field(role, "calls"): calls,
    }


def parse_usage(raw: Mapping[str, str]) -> dict[str, RoleUsage]:
    """The usage hash as read from Redis → usage per role (unknown fields are ignored)."""
    per_role: dict[str, dict[str, float]] = {}
    for field, value in raw.items():
        role, _, metric = field.rpartition(":")
        if role and metric in METRICS:
            per_role.setdefault(role, {})[metric] = float(value) if metric == "cost_usd" else int(value)
    return {role: RoleUsage.model_validate(metrics) for role, metrics in per_role.items()}


def used(raw: Mapping[str, str]) -> tuple[int, float]:
    """Input plus output tokens, and USD, of every role in the usage hash."""
    usage = parse_usage(raw).values()
    return sum(u.input_tokens + u.output_tokens for u in usage), sum(u.cost_usd for u in usage)
