"""What tools exist, for checking crew files: the API (and ``crews validate``) list the declared servers.

``DeclaredTools`` keeps one session per server (``McpTools``), so repeated
registrations reuse the listing cache; a server that does not answer is
reported as unreachable rather than failing the check.
"""

from __future__ import annotations

import logging

from crews.spec.tools import AvailableTools
from roles.errors import RoleError
from roles.tools.builtin import MEMORY_READ, MEMORY_WRITE
from roles.tools.mcp.config import McpServer
from roles.tools.mcp.provider import McpTools
from roles.tools.python import entry_point_names

log = logging.getLogger(__name__)


class DeclaredTools:
    """The Python tools installed here and the tools of the operator's MCP servers."""

    def __init__(self, servers: dict[str, McpServer]) -> None:
        self.servers = servers
        self._mcp = McpTools(servers)

    async def available(self) -> AvailableTools:
        listed: dict[str, frozenset[str]] = {}
        unreachable: dict[str, str] = {}
        for name in self.servers:
            try:
                tools = await self._mcp.tools(name)
            except RoleError as exc:
                log.warning("MCP server %s cannot be listed for a crew check: %s", name, exc)
                unreachable[name] = "it did not answer; the operator's logs say why"
                continue
            listed[name] = frozenset(tool.name.partition(".")[2] for tool in tools)
        python = entry_point_names() | {MEMORY_READ.name, MEMORY_WRITE.name}
        return AvailableTools(python=python, servers=listed, unreachable=unreachable)

    async def aclose(self) -> None:
        await self._mcp.aclose()
