"""What an OpenAI-compatible server answers to ``POST /chat/completions``: the fields the client reads.

Parsed straight from the response body (``Completion.parse``); fields it
does not name are ignored, so a server's extensions (vLLM's ``kv_transfer_params``,
``prompt_logprobs``, a provider's ``system_fingerprint``) change nothing.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError

from inference.errors import BadLLMResponse

_IGNORE_EXTRA = ConfigDict(extra="ignore")


class WireFunction(BaseModel):
    model_config = _IGNORE_EXTRA

    name: str
    arguments: str | None = None


class WireToolCall(BaseModel):
    model_config = _IGNORE_EXTRA

    id: str = ""
    type: str = "function"
    function: WireFunction | None = None


class WireMessage(BaseModel):
    model_config = _IGNORE_EXTRA

    content: str | None = None
    tool_calls: list[WireToolCall] | None = None


class WireChoice(BaseModel):
    model_config = _IGNORE_EXTRA

    message: WireMessage
    finish_reason: str | None = None


class WireUsage(BaseModel):
    model_config = _IGNORE_EXTRA

    prompt_tokens: int = 0
    completion_tokens: int = 0


class Completion(BaseModel):
    """A chat completion (non-streamed): its id, the model that answered, the choices, the usage."""

    model_config = _IGNORE_EXTRA

    id: str = ""
    model: str = ""
    choices: list[WireChoice] = []
    usage: WireUsage | None = None

    @classmethod
    def parse(cls, body: bytes, endpoint: str) -> Completion:
        """The completion in ``body``; ``BadLLMResponse`` when the server answered something else."""
        try:
            return cls.model_validate_json(body)
        except ValidationError as exc:
            raise BadLLMResponse(
                f"{endpoint} answered 200 with something that is not a chat completion "
                f"({exc.error_count()} problems, first: {exc.errors()[0]['msg']}; body starts "
                f"{body[:80]!r}): check that CREWS_LLM_URLS points at an OpenAI-compatible /v1 URL"
            ) from exc
