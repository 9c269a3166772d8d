"""What LLM tokens cost: the operator's price table per model, and the cost of one call's usage.

Prices are per million tokens, input and output apart, keyed by the served
model name (``CREWS_LLM_PRICES``, JSON:
``{"crews-local": {"input_per_mtok": 0.2, "output_per_mtok": 0.6}}``). A
self-hosted pool is priced the same way (what its GPUs cost per token); a
model missing from the table costs nothing. The client prices each call as it
records its usage, so a job's cost is the prices of the day it ran.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MTOK = 1_000_000


class ModelPrice(BaseModel):
    """USD per million input and output tokens of one model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_per_mtok: float = Field(0.0, ge=0, description="USD per million prompt tokens")
    output_per_mtok: float = Field(0.0, ge=0, description="USD per million completion tokens")

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """USD for these tokens."""
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / MTOK


def call_cost(prices: dict[str, ModelPrice], model: str, input_tokens: int, output_tokens: int) -> float:
    """USD of one call to ``model`` (0 when the table has no price for it)."""
    price = prices.get(model)
    return price.cost(input_tokens, output_tokens) if price is not None else 0.0
