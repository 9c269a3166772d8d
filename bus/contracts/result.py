"""A step's result as both sides of the bus read it: one JSON value per step in the job's results hash.

Roles write it once (``HSETNX``, whoever finishes first); the coordinator,
the API and the role's A2A agent read it. Usage per role lives beside it in
the usage hash (``bus.contracts.usage``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from bus.contracts.evals import EvalScore


class TokenUsage(BaseModel):
    """Tokens one step used over all its LLM calls, and what they cost (USD, at the operator's prices)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class StepResult(BaseModel):
    """What a step produced, as recorded."""

    output: str
    data: Any = None
    role: str = ""
    worker: str = ""
    usage: TokenUsage = TokenUsage()
    duration_s: float | None = None
    evals: list[EvalScore] = []
    attempt: int | None = Field(None, description="the delivery of the step that produced this result")
    resumed_turns: int = Field(
        0, description="LLM answers that delivery replayed from the step's checkpoint instead of asking again"
    )

    @property
    def failed_evals(self) -> list[EvalScore]:
        return [score for score in self.evals if not score.passed]


StepUsage = TokenUsage
"""The name the API and the web view use for a step's usage."""
