"""A step's tools as CrewAI tools: the one place the crewai engine reaches the role's tools.

``crewai_tools(toolbox, bridge)`` gives one CrewAI ``BaseTool`` per tool of the
step's ``ToolSet`` (its allow-list). Its ``args_schema`` reports the tool's
own JSON schema (and lets every argument through, so CrewAI drops none), and
running it goes through ``ToolSet.call`` on the worker's loop, so argument
checks, the approval gate, the output cut and the ``execute_tool`` span are the
native engine's. A ``ToolError`` goes back to the model as the tool's result
(``Error: ...``), as in the native loop. The call id of each run is the one the
model gave (``CallIds``, filled by the LLM adapter), so an approval is recorded
as ``<step>:<call id>`` as for every engine. To point the crewai engine at
another tool layer, change this function only.

The CrewAI project's own tools (``StepWork.crewai.tools``: a ``BaseTool``
class or instance, an ``@tool`` function, a ``crewai_tools`` class, by import
path) join the step's ``ToolSet`` first (``with_project_tools``): each is
loaded through ``roles.engines.crewai_project`` (only from the projects the
operator declared) and wrapped as a ``Tool`` whose function runs the CrewAI
tool, so its calls pass the same allow-list, argument check and approval gate
(it is not read-only: a call waits for approval unless the crew file says
``approval: none``).

Imported only by ``roles.engines.crewai`` (CrewAI is loaded lazily).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from typing import Any

from crewai.tools import BaseTool
from pydantic import BaseModel, ConfigDict, PrivateAttr

from bus.contracts.step import StepWork
from inference.results import ToolCall
from roles.engines.crewai_bridge import Bridge
from roles.engines.crewai_project import ProjectCode
from roles.errors import StepFailed, ToolError
from roles.tools.base import Tool, ToolContext
from roles.tools.catalog import crew_rule, needs_approval
from roles.tools.toolset import StepTool, ToolSet, error_text


class CallIds:
    """The ids of the tool calls the model asked for, in order, per tool name."""

    def __init__(self) -> None:
        self._ids: defaultdict[str, deque[str]] = defaultdict(deque)
        self._counts: defaultdict[str, int] = defaultdict(int)

    def add(self, name: str, call_id: str) -> None:
        self._ids[name].append(call_id)

    def next(self, name: str) -> str:
        self._counts[name] += 1
        return self._ids[name].popleft() if self._ids[name] else f"{name}-{self._counts[name]}"


def _arguments_model(name: str, schema: dict[str, Any]) -> type[BaseModel]:
    """A model that reports ``schema`` as its JSON schema and keeps every argument for the ToolSet to check."""

    class Arguments(BaseModel):
        model_config = ConfigDict(extra="allow")

        @classmethod
        def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
            return dict(schema)

    Arguments.__name__ = Arguments.__qualname__ = f"{name}_arguments"
    return Arguments


class RoleTool(BaseTool):
    """One of the role's tools, run through the step's ``ToolSet`` on the worker's loop."""

    _toolbox: ToolSet = PrivateAttr()
    _bridge: Bridge = PrivateAttr()
    _ids: CallIds = PrivateAttr()

    def _run(self, **arguments: Any) -> str:
        call = ToolCall(id=self._ids.next(self.name), name=self.name, arguments=arguments)
        try:
            return self._bridge.call(self._toolbox.call(call))
        except ToolError as exc:
            return error_text(exc)


def crewai_tools(toolbox: ToolSet, bridge: Bridge, ids: CallIds) -> list[BaseTool]:
    """The step's allowed tools (and only those) as CrewAI tools."""
    tools: list[BaseTool] = []
    for spec in toolbox.specs():
        function = spec["function"]
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        tool = RoleTool(
            name=function["name"],
            description=function.get("description") or function["name"],
            args_schema=_arguments_model(function["name"], parameters),
        )
        tool._toolbox, tool._bridge, tool._ids = toolbox, bridge, ids
        tools.append(tool)
    return tools


def with_project_tools(toolbox: ToolSet, work: StepWork, code: ProjectCode) -> ToolSet:
    """``toolbox`` with the CrewAI project's tools the step names (none: ``toolbox`` as it is)."""
    refs = work.crewai.tools if work.crewai is not None else {}
    if not refs:
        return toolbox
    extra = []
    for name, ref in refs.items():
        tool = project_tool(name, code.load(ref, f"tool {name!r}"), ref)
        extra.append(StepTool(tool, needs_approval(tool, None, crew_rule(work, name))))
    return toolbox.with_tools(extra)


def project_tool(name: str, found: Any, ref: str) -> Tool:
    """A CrewAI tool of the project (class, instance or ``@tool`` function) as a ``Tool`` named ``name``."""
    if isinstance(found, type) and issubclass(found, BaseTool):
        try:
            found = found()
        except Exception as exc:  # the project's constructor: whatever it raises, the step says so
            raise StepFailed(f"tool {name!r} ({ref}) cannot be made with no arguments: {exc}") from exc
    if not isinstance(found, BaseTool):
        raise StepFailed(
            f"tool {name!r} ({ref}) is a {type(found).__name__}, not a CrewAI tool: name a BaseTool subclass "
            "or instance, or a function decorated with crewai's @tool"
        )
    crewai_tool = found
    schema = crewai_tool.args_schema.model_json_schema() if crewai_tool.args_schema else {"type": "object"}

    async def run(context: ToolContext, arguments: dict[str, Any]) -> str:
        try:
            result = await asyncio.to_thread(crewai_tool.run, **arguments)
        except Exception as exc:  # the project's tool failed: the model reads why, as CrewAI would tell it
            raise ToolError(f"{name} failed: {exc}") from exc
        return result if isinstance(result, str) else str(result)

    return Tool(
        name=name, description=crewai_tool.description or name, parameters=schema, function=run,
        source=f"crewai:{ref}",
    )  # fmt: skip
