"""What one chat call returns: content, tool calls, usage, and where it ran."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from inference.errors import BadLLMResponse


class Usage(BaseModel):
    """Tokens one call (or a sum of calls) used, and what they cost (``inference.pricing``)."""

    model_config = ConfigDict(frozen=True)

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cost_usd=self.cost_usd + other.cost_usd,
        )


class ToolCall(BaseModel):
    """A function the model asked to call, with its arguments parsed from JSON."""

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class ChatResult(BaseModel):
    """The first choice of a chat completion, normalised."""

    content: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    model: str
    endpoint: str = Field(description="base URL of the endpoint that answered")
    finish_reason: str | None = None
    attempts: int = Field(1, description="1 + the retries it took")

    def json_content(self) -> Any:
        """The content parsed as JSON (for ``response_format`` json_object / json_schema)."""
        try:
            return json.loads(self.content or "")
        except json.JSONDecodeError as exc:
            raise BadLLMResponse(
                f"the model's answer is not JSON ({exc}): ask with response_format "
                f"{{'type': 'json_object'}} or a json_schema; answer starts {(self.content or '')[:80]!r}"
            ) from exc

    def to_message(self) -> dict[str, Any]:
        """This answer as the assistant message to append to the conversation for the next call."""
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }
                for call in self.tool_calls
            ]
        return message
