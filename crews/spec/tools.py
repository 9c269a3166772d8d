"""Check a crew file's tool names against the tools that exist: the operator's MCP servers and Python tools.

The crew file's syntax (``name``, ``server.tool``, ``server.*``) is checked when
it loads; whether the names exist needs the operator's declarations, which
the API process has (and ``crews validate`` when they are set). The process
that has them builds an ``AvailableTools`` (the CLI wires the MCP client in:
``crews.spec`` stays a leaf) and ``check_tool_names`` reports each unknown
server or tool at its place in the file, with a did-you-mean.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from crews.spec.models import CrewSpec, ToolRef
from crews.spec.problems import Problem, suggest


@dataclass(frozen=True)
class AvailableTools:
    """The tools a crew may name: Python tools, and each declared MCP server's tools."""

    python: frozenset[str]
    servers: Mapping[str, frozenset[str]] = field(default_factory=dict)
    unreachable: Mapping[str, str] = field(default_factory=dict)
    """Declared servers that could not be listed, and why."""


class ToolsSource(Protocol):
    """What the API is given to learn the available tools (asked when a crew is registered)."""

    async def available(self) -> AvailableTools: ...

    async def aclose(self) -> None: ...


def check_tool_names(spec: CrewSpec, available: AvailableTools) -> list[Problem]:
    """A problem for each tool a role names that does not exist, at ``roles.<key>.tools[i]``."""
    return [problem for key, role in spec.roles.items() for problem in _role(key, role.tools, available)]


def _role(key: str, tools: list[ToolRef], available: AvailableTools) -> Iterator[Problem]:
    for index, ref in enumerate(tools):
        if ref.crewai is not None:
            continue  # the CrewAI project's code: resolved by the crewai workers in the declared projects
        message = _unknown(ref.name, available)
        if message is not None:
            yield Problem(("roles", key, "tools", index), message)


def _unknown(name: str, available: AvailableTools) -> str | None:
    if "." not in name:
        if name in available.python:
            return None
        servers = f"; MCP tools are written <server>.<tool> ({', '.join(sorted(available.servers))})"
        return (
            f"unknown tool '{name}'"
            + suggest(name, sorted(available.python))
            + (servers if available.servers else "")
        )
    server, _, tool = name.partition(".")
    if server in available.unreachable:
        return (
            f"MCP server '{server}' could not be asked for its tools ({available.unreachable[server]}): "
            "register the crew again once it answers"
        )
    if server not in available.servers:
        declared = sorted({*available.servers, *available.unreachable})
        known = suggest(server, declared) or " (none are declared)"
        return f"unknown MCP server '{server}'{known}: the operator declares servers, a crew file names them"
    listed = available.servers[server]
    if tool == "*" or tool in listed:
        return None
    return f"MCP server '{server}' has no tool '{tool}'" + suggest(tool, sorted(listed))
