"""A step's result as both sides of the bus read it: one JSON value per step in the job's results hash.

Roles write it once (``HSETNX``, whoever finishes first); the coordinator,
the API and the role's A2A agent read it. Usage per role lives beside it in
the usage hash (``bus.contracts.usage``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class TokenUsage(BaseModel):
    """Tokens a step's LLM calls used (in a result: every call whose answer the result rests on)."""

    input_tokens: int = 0
    output_tokens: int = 0


class StepResult(BaseModel):
    """What a step produced, as recorded."""

    output: str
    data: Any = None
    role: str = ""
    worker: str = ""
    usage: TokenUsage = TokenUsage()
    duration_s: float | None = None
    attempt: int | None = Field(None, description="the delivery of the step that produced this result")
    resumed_turns: int = Field(
        0, description="LLM answers that delivery replayed from the step's checkpoint instead of asking again"
    )
