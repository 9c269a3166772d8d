"""Tools a role may call: a registry (name → JSON schema + async function) and a per-step allow-list.

- A ``ToolRegistry`` holds every tool this worker can run: the built-ins
  (``memory_read``, ``memory_write``), which every native role may use, and
  the others (``calculator`` here), which a step may use only when its
  ``tools`` names them.
- ``ToolRegistry.for_step`` gives a ``ToolBox``: the allow-list of one step,
  enforced in code. Calling a tool outside it raises ``ToolNotAllowed`` (the
  step fails); arguments are validated against the tool's JSON schema
  (``ToolArgumentsInvalid``, which the model is told about).
- Each call runs in an ``execute_tool <name>`` span (GenAI attributes; never
  the arguments or the result, which may hold secrets).

A tool with side effects gets ``ToolContext.idempotency_key`` and must honour
it: a step may run again after a crash. Called from the native tool loop it is
``<job>:<step>:<turn>:<call>``, the same in every run of the step
(``roles.step.checkpoint``); elsewhere ``<job>:<step>``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from inference.results import ToolCall
from roles.errors import StepFailed, ToolArgumentsInvalid, ToolError, ToolNotAllowed
from roles.step.approvals import ApprovalGate, denied_output
from roles.step.memory import SharedMemory
from roles.tools import _calculator

tracer = trace.get_tracer("crews.roles")
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CUT = "\n[cut: the tool's output was longer than {limit} characters]"


@dataclass(frozen=True)
class ToolContext:
    """What a tool knows about the call: the job, step and role, and the job's shared memory."""

    job: str
    step: str
    role: str
    memory: SharedMemory
    call_key: str = ""
    """The idempotency key of this one call, when the caller gives one (the native loop does)."""

    @property
    def idempotency_key(self) -> str:
        return self.call_key or f"{self.job}:{self.step}"


ToolFunction = Callable[[ToolContext, dict[str, Any]], Awaitable[str]]


@dataclass(frozen=True)
class Tool:
    """A function the model may call, described by a JSON schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]
    function: ToolFunction
    builtin: bool = False
    validator: Draft202012Validator = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not TOOL_NAME.fullmatch(self.name):
            raise ValueError(f"tool name {self.name!r}: use 1-64 letters, digits, '_' or '-'")
        Draft202012Validator.check_schema(self.parameters)
        object.__setattr__(self, "validator", Draft202012Validator(self.parameters))

    def spec(self) -> dict[str, Any]:
        """The tool as an OpenAI chat ``tools`` entry."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }

    def check_arguments(self, arguments: dict[str, Any]) -> None:
        error = best_match(self.validator.iter_errors(arguments))
        if error is not None:
            where = f" (at {error.json_path})" if error.path else ""
            raise ToolArgumentsInvalid(
                f"the arguments of {self.name} do not match its schema: {error.message}{where}; "
                f"call it again with arguments that match {json.dumps(self.parameters)}"
            )


class ToolRegistry:
    """Every tool this worker can run, by name."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            self.register(tool)

    def register(self, tool: Tool) -> None:
        if tool.name in self._tools:
            raise ValueError(f"a tool named {tool.name!r} is already registered")
        self._tools[tool.name] = tool

    def names(self) -> list[str]:
        return sorted(self._tools)

    def for_step(
        self,
        allowed: Sequence[str],
        context: ToolContext,
        *,
        max_output_chars: int,
        builtins: bool = True,
        gate: ApprovalGate | None = None,
    ) -> ToolBox:
        """The step's tools: the built-ins (unless ``builtins`` is off) plus ``allowed``.

        ``StepFailed`` when an allowed tool is not installed in this worker.
        """
        missing = sorted(set(allowed) - set(self._tools))
        if missing:
            raise StepFailed(
                f"role {context.role!r} may use tool(s) {', '.join(missing)}, which this worker does not have "
                f"(it has {', '.join(self.names())}): register them in the worker or remove them from the role"
            )
        tools = [tool for tool in self._tools.values() if (tool.builtin and builtins) or tool.name in allowed]
        return ToolBox(tools, context, max_output_chars=max_output_chars, gate=gate)


class ToolBox:
    """One step's tools; the allow-list is enforced here, whatever the model asks for."""

    def __init__(
        self,
        tools: Iterable[Tool],
        context: ToolContext,
        *,
        max_output_chars: int,
        gate: ApprovalGate | None = None,
    ) -> None:
        self._tools = {tool.name: tool for tool in tools}
        self.context = context
        self._max_output_chars = max_output_chars
        self._gate = gate

    @property
    def names(self) -> list[str]:
        return sorted(self._tools)

    def specs(self) -> list[dict[str, Any]]:
        return [self._tools[name].spec() for name in self.names]

    async def call(self, call: ToolCall, *, idempotency_key: str = "") -> str:
        """Run one tool call; ``ToolNotAllowed`` outside the allow-list, ``ToolError`` for the model.

        ``idempotency_key``: the call's stable key (``ToolContext.idempotency_key``), if the caller has one.
        """
        tool = self._tools.get(call.name)
        if tool is None:
            ctx = self.context
            raise ToolNotAllowed(
                f"the model called tool {call.name!r}, which role {ctx.role!r} may not use on step {ctx.step!r} "
                f"(allowed: {', '.join(self.names)}): add it to the role's tools in the crew file if it should be",
                tool=call.name,
            )
        if self._gate is not None and self._gate.needs(tool.name):
            tool.check_arguments(call.arguments)  # a person approves only a valid call
            record = await self._gate.decide(call)
            if record.status == "denied":
                return denied_output(record)
        with tracer.start_as_current_span(f"execute_tool {tool.name}") as span:
            _set_tool_attributes(span, tool, call, self.context)
            try:
                tool.check_arguments(call.arguments)
                context = replace(self.context, call_key=idempotency_key) if idempotency_key else self.context
                output = await tool.function(context, call.arguments)
            except ToolError as exc:
                span.set_attribute("error.type", type(exc).__name__)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                raise
        if len(output) > self._max_output_chars:
            output = output[: self._max_output_chars] + CUT.format(limit=self._max_output_chars)
        return output


def _set_tool_attributes(span: trace.Span, tool: Tool, call: ToolCall, context: ToolContext) -> None:
    span.set_attribute("gen_ai.operation.name", "execute_tool")
    span.set_attribute("gen_ai.tool.name", tool.name)
    span.set_attribute("gen_ai.tool.call.id", call.id)
    span.set_attribute("gen_ai.tool.type", "function")
    span.set_attribute("gen_ai.tool.description", tool.description)
    span.set_attribute("crews.job.id", context.job)
    span.set_attribute("crews.step", context.step)
    span.set_attribute("crews.role", context.role)


# --- built-in and example tools ------------------------------------------------------------

MEMORY_KEY = {"type": "string", "minLength": 1, "maxLength": 200, "description": "name of the entry"}


async def _memory_read(context: ToolContext, arguments: dict[str, Any]) -> str:
    key = arguments.get("key")
    if key is None:
        return json.dumps(await context.memory.read_all(), ensure_ascii=False)
    value = await context.memory.read(key)
    if value is None:
        return json.dumps({"key": key, "value": None, "note": "nothing is written under this key yet"})
    return json.dumps({"key": key, "value": value}, ensure_ascii=False)


async def _memory_write(context: ToolContext, arguments: dict[str, Any]) -> str:
    await context.memory.write(arguments["key"], arguments["value"])
    return json.dumps({"written": arguments["key"]}, ensure_ascii=False)


async def _calculate(context: ToolContext, arguments: dict[str, Any]) -> str:
    return str(_calculator.evaluate(arguments["expression"]))


MEMORY_READ = Tool(
    name="memory_read",
    description=(
        "Read the crew's shared memory for this job: the entry under `key`, or every entry when no key is given."
    ),
    parameters={"type": "object", "properties": {"key": MEMORY_KEY}, "additionalProperties": False},
    function=_memory_read,
    builtin=True,
)
MEMORY_WRITE = Tool(
    name="memory_write",
    description="Write `value` under `key` in the crew's shared memory, for the other roles of this job to read.",
    parameters={
        "type": "object",
        "properties": {"key": MEMORY_KEY, "value": {"type": "string", "maxLength": 65_536}},
        "required": ["key", "value"],
        "additionalProperties": False,
    },
    function=_memory_write,
    builtin=True,
)
CALCULATOR = Tool(
    name="calculator",
    description="Evaluate an arithmetic expression: numbers, + - * / // % ** and parentheses.",
    parameters={
        "type": "object",
        "properties": {"expression": {"type": "string", "minLength": 1, "maxLength": 200}},
        "required": ["expression"],
        "additionalProperties": False,
    },
    function=_calculate,
)


def default_registry() -> ToolRegistry:
    """The tools every worker has: the shared-memory built-ins and the ``calculator`` example."""
    return ToolRegistry([MEMORY_READ, MEMORY_WRITE, CALCULATOR])
