"""CrewAI's LLM interface (``crewai.BaseLLM``) over the pool client: every CrewAI model call is an ``LLMPool.chat``.

So an ``engine: crewai`` step keeps what every engine keeps: routing and
failover, the job's token budget (checked before and recorded after each
call), usage per role and the GenAI ``chat`` span, all in ``inference/``.

CrewAI calls ``PoolLLM.call`` from its own thread with OpenAI-style messages
and (native function calling) OpenAI ``tools``; the call runs on the worker's
loop through the ``Bridge``. A text answer is returned as text; tool calls as
a list of OpenAI ``tool_calls`` entries, which CrewAI's loop executes. Before
each call the job's cancel is checked; a tool call naming a tool the step
does not offer fails the step (``ToolNotAllowed``), as the native loop does.

Imported only by ``roles.engines.crewai`` (CrewAI is loaded lazily).
"""

from __future__ import annotations

import json
from typing import Any

from crewai import BaseLLM
from pydantic import PrivateAttr

from inference.results import ChatResult, Usage
from roles.engines.base import StepRun
from roles.engines.crewai_bridge import Bridge
from roles.engines.crewai_tools import CallIds
from roles.errors import ToolNotAllowed

MESSAGE_KEYS = ("role", "content", "tool_calls", "tool_call_id", "name")


class Meter:
    """What the step's LLM calls used; shared by reference, so copies CrewAI makes of the LLM count too."""

    def __init__(self) -> None:
        self.usage = Usage()
        self.calls = 0


class PoolLLM(BaseLLM):
    """One step's model: the pool client, on the step's job, role, budget and LLM parameters."""

    llm_type: str = "crews-pool"
    model: str = "crews-pool"
    _step: StepRun = PrivateAttr()
    _bridge: Bridge = PrivateAttr()
    _ids: CallIds = PrivateAttr()
    _response_format: dict[str, Any] | None = PrivateAttr(default=None)
    _meter: Meter = PrivateAttr(default_factory=Meter)

    @classmethod
    def for_step(
        cls, step: StepRun, bridge: Bridge, ids: CallIds, response_format: dict[str, Any] | None
    ) -> PoolLLM:
        llm = cls(model=step.work.llm.model or "crews-pool", temperature=step.work.llm.temperature)
        llm._step, llm._bridge, llm._ids, llm._response_format = step, bridge, ids, response_format
        return llm

    @property
    def meter(self) -> Meter:
        return self._meter

    def supports_function_calling(self) -> bool:
        return True

    def supports_stop_words(self) -> bool:
        return False

    def get_context_window_size(self) -> int:
        return 32_768

    def call(
        self,
        messages: Any,
        tools: list[dict[str, Any]] | None = None,
        callbacks: list[Any] | None = None,
        available_functions: dict[str, Any] | None = None,
        from_task: Any = None,
        from_agent: Any = None,
        response_model: Any = None,
    ) -> Any:
        result = self._bridge.call(self._chat(_messages(messages), tools))
        if not result.tool_calls:
            return result.content or ""
        for call in result.tool_calls:
            self._ids.add(call.name, call.id)
        return [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
            }
            for call in result.tool_calls
        ]

    async def _chat(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> ChatResult:
        step, work = self._step, self._step.work
        await step.check_cancelled()
        result = await step.llm.chat(
            messages,
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
        self._meter.usage += result.usage
        self._meter.calls += 1
        offered = {tool.get("function", {}).get("name") for tool in tools or []}
        for call in result.tool_calls:
            if call.name not in offered:
                raise ToolNotAllowed(
                    f"the model called tool {call.name!r}, which role {work.role!r} may not use on step "
                    f"{work.step!r} (allowed: {', '.join(sorted(str(n) for n in offered))}): add it to the "
                    "role's tools in the crew file if it should be",
                    tool=call.name,
                )
        return result


def _messages(messages: Any) -> list[dict[str, Any]]:
    """CrewAI's messages as plain OpenAI chat messages (CrewAI may add keys of its own)."""
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    out: list[dict[str, Any]] = []
    for message in messages:
        clean = {key: message[key] for key in MESSAGE_KEYS if message.get(key) is not None}
        if clean.get("role") == "assistant" and "content" not in clean:
            clean["content"] = ""
        if clean.get("role") == "tool":
            clean.pop("name", None)
            clean["content"] = str(clean.get("content", ""))
        out.append(clean)
    return out
