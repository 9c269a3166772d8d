"""The Python tools this worker can run, by name: the built-ins and every ``crews.tools`` entry point.

MCP tools are not here: they are listed from their servers when a step needs
them (``roles.tools.catalog``).
"""

from __future__ import annotations

from collections.abc import Iterable

from roles.tools.base import Tool, ToolContext, ToolFunction
from roles.tools.builtin import CALCULATOR, MEMORY_READ, MEMORY_WRITE
from roles.tools.python import entry_point_tools

__all__ = [
    "CALCULATOR",
    "MEMORY_READ",
    "MEMORY_WRITE",
    "Tool",
    "ToolContext",
    "ToolFunction",
    "ToolRegistry",
    "default_registry",
]


class ToolRegistry:
    """Python tools by name."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            self.register(tool)

    def register(self, tool: Tool) -> None:
        if "." in tool.name:
            raise ValueError(
                f"tool name {tool.name!r}: a Python tool's name has no '.' (that is for MCP tools)"
            )
        if tool.name in self._tools:
            raise ValueError(f"a tool named {tool.name!r} is already registered")
        self._tools[tool.name] = tool

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return sorted(self._tools)

    def builtins(self) -> list[Tool]:
        return [tool for tool in self._tools.values() if tool.builtin]


def default_registry() -> ToolRegistry:
    """The shared-memory built-ins and every tool installed packages register (``calculator`` among them)."""
    registry = ToolRegistry([MEMORY_READ, MEMORY_WRITE])
    for tool in entry_point_tools():
        if registry.get(tool.name) is None:
            registry.register(tool)
    return registry
