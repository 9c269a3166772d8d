"""Every tool this worker can give a step: its Python tools and its declared MCP servers' tools.

``ToolCatalog.for_step`` turns a step's ``tools`` (``calculator``,
``payments.refund``, ``files.*``) into its ``ToolSet`` and decides, per tool,
whether its calls wait for a person's approval (``needs_approval``):

1. the operator's rule for the tool is ``required`` → approval (a crew file cannot loosen it);
2. the crew file says ``approval: required`` or ``approval: none`` → as it says;
3. the operator's rule is ``none`` → no approval;
4. otherwise: approval unless the tool is read-only (MCP ``readOnlyHint: true``,
   or a Python tool registered with ``read_only=True``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from bus.contracts.step import StepWork
from roles.errors import StepFailed, ToolUnavailable
from roles.tools.base import Tool, ToolContext
from roles.tools.registry import ToolRegistry
from roles.tools.toolset import StepTool, ToolSet

if TYPE_CHECKING:
    from roles.step.approvals import ApprovalGate
    from roles.tools.mcp.provider import McpTools

Approval = Literal["none", "required"]


def needs_approval(tool: Tool, operator: Approval | None, crew: Approval | None) -> bool:
    """Whether calls of ``tool`` wait for a person (see the module docstring for the order)."""
    if operator == "required":
        return True
    if crew is not None:
        return crew == "required"
    if operator == "none":
        return False
    return not tool.read_only


def crew_rule(work: StepWork, name: str) -> Approval | None:
    """The crew file's ``approval`` for tool ``name``: its own entry, else its server's ``server.*``."""
    server = name.split(".", 1)[0] + ".*" if "." in name else None
    for candidate in (name, server):
        if candidate is None:
            continue
        if candidate in work.approval_tools:
            return "required"
        if candidate in work.approval_waived:
            return "none"
    return None


class ToolCatalog:
    """The worker's Python tools and MCP servers; builds each step's ``ToolSet``."""

    def __init__(self, registry: ToolRegistry, mcp: McpTools | None = None) -> None:
        self.registry = registry
        self.mcp = mcp

    async def for_step(
        self,
        work: StepWork,
        context: ToolContext,
        *,
        max_output_chars: int,
        gate: ApprovalGate | None = None,
    ) -> ToolSet:
        """The step's tools: the built-ins (when the crew has shared memory) plus those its role names."""
        chosen: dict[str, Tool] = {}
        if work.memory:
            chosen.update((tool.name, tool) for tool in self.registry.builtins())
        for name in work.tools:
            for tool in await self._resolve(name, work.role):
                chosen[tool.name] = tool
        entries = [
            StepTool(tool, needs_approval(tool, self._operator_rule(tool), crew_rule(work, tool.name)))
            for tool in chosen.values()
        ]
        return ToolSet(entries, context, max_output_chars=max_output_chars, gate=gate)

    async def _resolve(self, name: str, role: str) -> list[Tool]:
        if "." not in name:
            tool = self.registry.get(name)
            if tool is None:
                raise StepFailed(
                    f"role {role!r} may use tool {name!r}, which this worker does not have (it has "
                    f"{', '.join(self.registry.names())}): install the package that registers it, "
                    "or remove it from the role"
                )
            return [tool]
        server, _, wanted = name.partition(".")
        if self.mcp is None:
            raise ToolUnavailable(
                f"role {role!r} may use {name!r}, but no MCP servers are declared for this worker: the "
                "operator declares them in CREWS_MCP_SERVERS or CREWS_MCP_SERVERS_FILE",
                server=server,
            )
        tools = await self.mcp.tools(server)
        if wanted == "*":
            return tools
        found = [tool for tool in tools if tool.name == name]
        if not found:
            listed = ", ".join(tool.name for tool in tools) or "no tools"
            raise ToolUnavailable(
                f"MCP server {server!r} has no tool {wanted!r} (it lists {listed}): fix the role's tools",
                server=server,
            )
        return found

    def _operator_rule(self, tool: Tool) -> Approval | None:
        if self.mcp is None or not tool.source.startswith("mcp:"):
            return None
        server = self.mcp.servers.get(tool.source.removeprefix("mcp:"))
        return server.operator_rule(tool.name.partition(".")[2]) if server else None

    async def aclose(self) -> None:
        if self.mcp is not None:
            await self.mcp.aclose()
