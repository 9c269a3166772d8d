"""One step's tools, engine-neutral: list their schemas, and gate + call one by name.

An engine (native, CrewAI, ADK) needs only ``ToolSet.specs()`` (OpenAI-style
``tools`` entries) and ``ToolSet.call(ToolCall)``, which does, in order:

1. the allow-list, enforced in code: a tool the step was not given is a
   ``ToolNotAllowed`` error for the model (nothing runs);
2. the arguments against the tool's JSON schema (``ToolArgumentsInvalid``);
3. approval, for a tool that needs it: the step waits for a person's decision
   on exactly this tool and these arguments (``roles.step.approvals``); a
   denial is the tool's result (the model is told no, nothing runs);
4. the call, in an ``execute_tool <name>`` span (GenAI attributes; never the
   arguments or the result, which may hold secrets), with the call's
   idempotency key in its context. A failing call's span gets the error's
   type as ``error.type`` and a fixed status description, never the error's
   message (it may quote the arguments, or a secret of the tool's). A tool that
   raises anything but ``ToolError`` is a crash: it is logged by type and
   place only and raised again as ``ToolCrashed`` (no message, no chained
   cause), which the worker retries like any failed delivery;
5. the output framed as untrusted data (``frame_output``: ``roles.framing``)
   and cut at ``max_output_chars``.
"""

from __future__ import annotations

import logging
import traceback
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from bus.contracts.approvals import arguments_digest
from inference.results import ToolCall
from roles.errors import RoleError, ToolCrashed, ToolError, ToolNotAllowed
from roles.framing import block_text, data_block, escape
from roles.step.approvals import ApprovalGate, denied_output
from roles.tools.base import Tool, ToolContext

log = logging.getLogger(__name__)
tracer = trace.get_tracer("crews.roles")
CUT = "\n[cut: the tool's output was longer than {limit} characters]"
OUTPUT_TAG = "tool_output"
OUTPUT_WHAT = "data the tool returned"
TOOL_FAILED = "the tool call failed"


@dataclass(frozen=True)
class StepTool:
    """A tool as one step may use it: and whether its calls wait for a person's approval."""

    tool: Tool
    needs_approval: bool = False


class ToolSet:
    """One step's tools; the allow-list, schemas and approvals are enforced here, whatever the model asks."""

    def __init__(
        self,
        tools: Iterable[StepTool],
        context: ToolContext,
        *,
        max_output_chars: int,
        gate: ApprovalGate | None = None,
    ) -> None:
        self._tools = {entry.tool.model_name: entry for entry in tools}
        self.context = context
        self._max_output_chars = max_output_chars
        self._gate = gate
        self._uses: Counter[str] = Counter()

    @property
    def gate(self) -> ApprovalGate | None:
        """The step's approval gate (engines ask a person through it for more than tool calls)."""
        return self._gate

    def with_tools(self, extra: Iterable[StepTool]) -> ToolSet:
        """This step's tools and ``extra`` (an engine's own, e.g. a CrewAI project's), gated the same."""
        tools = [*self._tools.values(), *extra]
        return ToolSet(tools, self.context, max_output_chars=self._max_output_chars, gate=self._gate)

    @property
    def names(self) -> list[str]:
        """The tools' names as the crew file writes them."""
        return sorted(entry.tool.name for entry in self._tools.values())

    def get(self, name: str) -> StepTool | None:
        """The tool the model calls ``name`` (``payments__refund``; the crew-file name works too)."""
        return self._tools.get(name) or self._tools.get(name.replace(".", "__"))

    def specs(self) -> list[dict[str, Any]]:
        return [self._tools[name].tool.spec() for name in sorted(self._tools)]

    async def call(self, call: ToolCall, *, idempotency_key: str = "") -> str:
        """Run one tool call and return what the model reads; ``ToolError`` for the model otherwise.

        ``idempotency_key``: the call's stable key when the caller has one (the checkpointed native loop).
        """
        entry = self.get(call.name)
        if entry is None:
            ctx = self.context
            raise ToolNotAllowed(
                f"there is no tool {call.name!r} for role {ctx.role!r} on step {ctx.step!r}, and nothing ran "
                f"(its tools: {', '.join(sorted(self._tools)) or 'none'}): use one of these",
                tool=call.name,
            )
        tool = entry.tool
        tool.check_arguments(call.arguments)  # a person approves only a valid call
        context = self.context.for_call(call.id, arguments_digest(tool.name, call.arguments), idempotency_key)
        if entry.needs_approval:
            if self._gate is None:
                raise ToolError(
                    f"{tool.model_name} needs a person's approval, which this step cannot ask for"
                )
            record = await self._gate.decide(tool.name, call.id, call.arguments, self._use(context))
            if record.status == "denied":
                return frame_output(tool.name, denied_output(record))
        output = await _run(tool, context, call)
        if len(output) > self._max_output_chars:
            output = output[: self._max_output_chars] + CUT.format(limit=self._max_output_chars)
        return frame_output(tool.name, output)

    def _use(self, context: ToolContext) -> str:
        """The key an approval is claimed with: the call's idempotency key, numbered when this run repeats it.

        (The native loop's keys differ per turn; an engine without them repeats a key for a repeated call id.)
        """
        key = context.idempotency_key
        self._uses[key] += 1
        count = self._uses[key]
        return key if count == 1 else f"{key}#{count}"


async def _run(tool: Tool, context: ToolContext, call: ToolCall) -> str:
    """The call in its span; the span says that it failed and how (the error's type), never what it said."""
    with tracer.start_as_current_span(
        f"execute_tool {tool.name}", record_exception=False, set_status_on_exception=False
    ) as span:
        _set_tool_attributes(span, tool, call, context)
        try:
            return await tool.function(context, call.arguments)
        except RoleError as exc:  # ours: a tool error for the model, an unreachable server, a cancel
            _set_failed(span, exc)
            raise
        except Exception as exc:  # noqa: BLE001 - a tool's own failure: its message may hold secrets
            _set_failed(span, exc)
            where = traceback.extract_tb(exc.__traceback__)[-1]
            log.warning(
                "tool %s of step %s (job %s) raised %s at %s:%d (message withheld: it may hold secrets)",
                tool.name, context.step, context.job, type(exc).__name__, where.filename, where.lineno,
            )  # fmt: skip
            raise ToolCrashed(tool.name, type(exc).__name__) from None


def _set_failed(span: trace.Span, exc: Exception) -> None:
    span.set_attribute("error.type", type(exc).__name__)
    span.set_status(Status(StatusCode.ERROR, TOOL_FAILED))


def error_text(exc: ToolError) -> str:
    """What the model reads for a failed call (every engine): ``Error: …``, ``<`` escaped like any data."""
    return f"Error: {escape(str(exc))}"


def frame_output(tool: str, output: str) -> str:
    """The tool's output inside a delimited data block (``<`` escaped, so no tag can close it)."""
    return data_block(OUTPUT_TAG, output, OUTPUT_WHAT, tool=tool)


def unframe(framed: str) -> str:
    """The output inside a ``frame_output`` block (for tests and logs)."""
    return block_text(framed, OUTPUT_TAG)


def _set_tool_attributes(span: trace.Span, tool: Tool, call: ToolCall, context: ToolContext) -> None:
    span.set_attribute("gen_ai.operation.name", "execute_tool")
    span.set_attribute("gen_ai.tool.name", tool.name)
    span.set_attribute("gen_ai.tool.call.id", call.id)
    span.set_attribute("gen_ai.tool.type", "extension" if tool.source.startswith("mcp:") else "function")
    span.set_attribute("gen_ai.tool.description", tool.description[:500])
    span.set_attribute("crews.job.id", context.job)
    span.set_attribute("crews.step", context.step)
    span.set_attribute("crews.role", context.role)
    span.set_attribute("crews.tool.source", tool.source)
