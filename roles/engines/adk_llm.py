"""ADK's LLM interface (``BaseLlm``) over the pool client: every ADK model call is an ``LLMPool.chat``.

So an ``engine: adk`` step keeps what every engine keeps: routing and
failover, the job's token budget (checked before and recorded after each
call), usage per role and the GenAI ``chat`` span, all in ``inference/``.

``PoolLlm.generate_content_async`` turns ADK's ``LlmRequest`` (genai
``Content`` turns, the system instruction, the tools' function declarations)
into OpenAI chat messages, calls the pool, and answers one non-partial
``LlmResponse`` (text and function calls, with the usage). Before each call it
checks the job's cancel and the step's ``max_iter``; a function call naming a
tool the step does not offer fails the step (``ToolNotAllowed``), as the
native loop does.

Imported only by ``roles.engines.adk`` (google-adk is loaded lazily).
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Mapping
from typing import Any

from google.adk.models._capabilities import LlmCapabilities
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.genai import types
from pydantic import PrivateAttr

from inference.results import ChatResult, Usage
from roles.engines.base import StepRun
from roles.errors import StepFailed, ToolNotAllowed

Message = dict[str, Any]


class Raised:
    """The first error our code raised inside ADK's loop (ADK turns exceptions into error events).

    The engine raises it again once ADK's run ends, so a retryable pool error
    stays retryable, a cancel stays a cancel and a failure keeps its reason.
    """

    def __init__(self) -> None:
        self.error: BaseException | None = None

    def keep(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error


class PoolLlm(BaseLlm):
    """One step's model: the pool client, on the step's job, role, budget and LLM parameters."""

    model: str = "crews-pool"
    _step: StepRun = PrivateAttr()
    _response_format: dict[str, Any] | None = PrivateAttr(default=None)
    _raised: Raised = PrivateAttr(default_factory=Raised)
    usage: Usage = Usage()
    calls: int = 0

    @classmethod
    def for_step(cls, step: StepRun, response_format: dict[str, Any] | None, raised: Raised) -> PoolLlm:
        llm = cls(model=step.work.llm.model or "crews-pool")
        llm._step, llm._response_format, llm._raised = step, response_format, raised
        return llm

    @property
    def capabilities(self) -> LlmCapabilities:
        return LlmCapabilities(output_schema_and_tools=True)

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        try:
            result = await self._call(llm_request)
        except BaseException as exc:  # kept for the engine to raise again, whatever ADK makes of it
            self._raised.keep(exc)
            raise
        yield response(result)

    async def _call(self, llm_request: LlmRequest) -> ChatResult:
        step, work = self._step, self._step.work
        await step.check_cancelled()
        if self.calls >= work.max_iter:
            raise StepFailed(
                f"step {work.step!r} ({work.role}) made {work.max_iter} LLM calls (max_iter) without a final "
                "answer: raise the role's max_iter, or make the task need fewer tool calls"
            )
        tools = tool_specs(llm_request)
        result = await step.llm.chat(
            messages(llm_request),
            job_id=work.job,
            role=work.role,
            step=work.step,
            tools=tools or None,
            response_format=self._response_format,
            model=work.llm.model,
            temperature=work.llm.temperature,
            max_tokens=work.llm.max_tokens,
            budget=step.budget,
            extra_body=work.llm.extra_body(),
        )
        self.usage += result.usage
        self.calls += 1
        offered = {spec["function"]["name"] for spec in tools}
        for call in result.tool_calls:
            if call.name not in offered:
                raise ToolNotAllowed(
                    f"the model called tool {call.name!r}, which role {work.role!r} may not use on step "
                    f"{work.step!r} (allowed: {', '.join(sorted(offered))}): add it to the role's tools in "
                    "the crew file if it should be",
                    tool=call.name,
                )
        return result


def tool_specs(request: LlmRequest) -> list[dict[str, Any]]:
    """The function declarations of the request as OpenAI chat ``tools`` entries."""
    specs: list[dict[str, Any]] = []
    for tool in request.config.tools or []:
        for declaration in getattr(tool, "function_declarations", None) or []:
            parameters = declaration.parameters_json_schema or {"type": "object", "properties": {}}
            specs.append(
                {
                    "type": "function",
                    "function": {
                        "name": declaration.name,
                        "description": declaration.description or "",
                        "parameters": parameters,
                    },
                }
            )
    return specs


def messages(request: LlmRequest) -> list[Message]:
    """The request as OpenAI chat messages: the system instruction, then each turn."""
    out: list[Message] = []
    system = _text_of(request.config.system_instruction)
    if system:
        out.append({"role": "system", "content": system})
    for content in request.contents:
        out.extend(_turn(content))
    return out


def _turn(content: types.Content) -> list[Message]:
    parts = content.parts or []
    text = "".join(part.text for part in parts if part.text and not part.thought)
    if content.role == "model":
        message: Message = {"role": "assistant", "content": text or None}
        calls = [part.function_call for part in parts if part.function_call is not None]
        if calls:
            message["tool_calls"] = [
                {
                    "id": call.id or call.name,
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.args or {})},
                }
                for call in calls
            ]
        elif not text:
            message["content"] = ""
        return [message]
    out: list[Message] = [
        {"role": "tool", "tool_call_id": part.function_response.id, "content": _tool_output(part)}
        for part in parts
        if part.function_response is not None
    ]
    if text:
        out.append({"role": "user", "content": text})
    return out


def _tool_output(part: types.Part) -> str:
    assert part.function_response is not None
    value: Any = part.function_response.response
    if isinstance(value, Mapping) and set(value) == {"result"}:
        value = value["result"]
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _text_of(instruction: Any) -> str:
    if instruction is None:
        return ""
    if isinstance(instruction, str):
        return instruction
    if isinstance(instruction, types.Content):
        return "".join(part.text or "" for part in instruction.parts or [])
    if isinstance(instruction, list):
        return "\n".join(_text_of(item) for item in instruction)
    return str(getattr(instruction, "text", "") or "")


def response(result: ChatResult) -> LlmResponse:
    """The pool's answer as one complete ADK model turn."""
    parts: list[types.Part] = []
    if result.content:
        parts.append(types.Part(text=result.content))
    for call in result.tool_calls:
        parts.append(
            types.Part(function_call=types.FunctionCall(id=call.id, name=call.name, args=call.arguments))
        )
    if not parts:
        parts.append(types.Part(text=""))
    usage = types.GenerateContentResponseUsageMetadata(
        prompt_token_count=result.usage.input_tokens,
        candidates_token_count=result.usage.output_tokens,
        total_token_count=result.usage.total_tokens,
    )
    return LlmResponse(
        content=types.Content(role="model", parts=parts),
        usage_metadata=usage,
        model_version=result.model,
        partial=False,
        turn_complete=True,
    )
