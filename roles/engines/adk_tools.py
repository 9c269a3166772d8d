"""A step's tools as Google ADK tools: the one place the adk engine reaches the role's tools.

``adk_tools(toolbox)`` gives one ADK ``BaseTool`` per tool of the step's
``ToolSet`` (its allow-list): the declaration carries the tool's own JSON
schema (``parameters_json_schema``), and running it goes through
``ToolSet.call``, so argument checks, the approval gate, the output cut and
the ``execute_tool`` span are the native engine's. A ``ToolError`` goes back to
the model as the tool's result (``Error: ...``), as in the native loop; any
other error is handed to ``on_error`` (ADK turns exceptions into error events,
the engine raises the original again). To
point the adk engine at another tool layer, change this function only.

Imported only by ``roles.engines.adk`` (google-adk is loaded lazily).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.adk.tools.base_tool import BaseTool
from google.adk.tools.tool_context import ToolContext
from google.genai import types

from inference.results import ToolCall
from roles.errors import ToolError
from roles.tools.toolset import ToolSet, error_text


class RoleTool(BaseTool):
    """One of the role's tools, run through the step's ``ToolSet``."""

    def __init__(
        self, toolbox: ToolSet, spec: dict[str, Any], on_error: Callable[[BaseException], None]
    ) -> None:
        function = spec["function"]
        super().__init__(name=function["name"], description=function.get("description", ""))
        self._toolbox, self._on_error = toolbox, on_error
        self._parameters: dict[str, Any] = function.get("parameters") or {"type": "object"}

    def _get_declaration(self) -> types.FunctionDeclaration:
        return types.FunctionDeclaration(
            name=self.name, description=self.description, parameters_json_schema=self._parameters
        )

    async def run_async(self, *, args: dict[str, Any], tool_context: ToolContext) -> Any:
        call = ToolCall(id=tool_context.function_call_id or self.name, name=self.name, arguments=args)
        try:
            return await self._toolbox.call(call)
        except ToolError as exc:
            return error_text(exc)
        except BaseException as exc:  # a cancel, a failed approval: the engine raises it again after ADK
            self._on_error(exc)
            raise


def adk_tools(toolbox: ToolSet, on_error: Callable[[BaseException], None]) -> list[BaseTool]:
    """The step's allowed tools (and only those) as ADK tools; ``on_error`` hears what a tool raised."""
    return [RoleTool(toolbox, spec, on_error) for spec in toolbox.specs()]
