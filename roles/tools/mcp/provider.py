"""MCP servers' tools as ``Tool`` s: listed from the server, called through the worker's session.

A tool ``refund`` of server ``payments`` is ``payments.refund`` in a crew file
and ``payments__refund`` to the model. Its JSON schema is the server's
``inputSchema``; it is read-only only when the server marks it
``readOnlyHint: true``. A call carries, in ``_meta``, the W3C trace context
(the SDK injects it under our ``execute_tool`` span) and
``crews/idempotency_key``, stable per step and call; the result's structured
content (JSON) or text goes back to the model, an ``isError`` result as the
tool's reported failure.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opentelemetry import propagate, trace
from opentelemetry.trace import Status, StatusCode

from roles.errors import ToolUnavailable
from roles.tools.base import Tool, ToolContext
from roles.tools.mcp.config import McpServer
from roles.tools.mcp.connection import McpConnection

if TYPE_CHECKING:
    from mcp.types import CallToolResult
    from mcp.types import Tool as McpTool

log = logging.getLogger(__name__)
IDEMPOTENCY_META = "crews/idempotency_key"
"""The ``_meta`` key of a call's idempotency key (``<job>:<step>:<call id>:<args digest>``)."""


class McpTools:
    """The declared servers of this worker and a session for each, opened on first use."""

    def __init__(self, servers: dict[str, McpServer]) -> None:
        self.servers = servers
        self._connections = {name: McpConnection(server) for name, server in servers.items()}

    def connection(self, server: str) -> McpConnection:
        found = self._connections.get(server)
        if found is None:
            declared = ", ".join(sorted(self._connections)) or "none"
            raise ToolUnavailable(
                f"MCP server {server!r} is not declared for this worker (declared: {declared}): the operator "
                "declares servers in CREWS_MCP_SERVERS or CREWS_MCP_SERVERS_FILE",
                server=server,
            )
        return found

    async def tools(self, server: str) -> list[Tool]:
        """The server's tools, as ``Tool`` s (a tool whose name or schema we cannot use is skipped, logged)."""
        connection = self.connection(server)
        tools = []
        for listed in await connection.list_tools():
            try:
                tools.append(_tool(connection, listed))
            except ValueError as exc:
                log.warning("MCP server %s: tool %r is not usable: %s", server, listed.name, exc)
        return tools

    async def aclose(self) -> None:
        for connection in self._connections.values():
            await connection.aclose()


def _tool(connection: McpConnection, listed: McpTool) -> Tool:
    server = connection.server
    name = f"{server.name}.{listed.name}"
    annotations = listed.annotations
    read_only = bool(annotations is not None and annotations.read_only_hint is True)

    async def run(context: ToolContext, arguments: dict[str, Any]) -> str:
        span = trace.get_current_span()
        _set_mcp_attributes(span, server, listed.name)
        meta: dict[str, Any] = {
            IDEMPOTENCY_META: context.idempotency_key,
            "crews/job": context.job,
            "crews/step": context.step,
        }
        propagate.inject(meta)
        result = await connection.call_tool(listed.name, arguments, meta)
        text = result_text(result)
        if result.is_error:
            span.set_attribute("error.type", "tool_error")
            span.set_status(Status(StatusCode.ERROR, "the tool reported an error"))
            return f"Error: the tool reported a failure: {text}"
        return text

    return Tool(
        name=name,
        description=(listed.description or listed.title or listed.name)[:2000],
        parameters=dict(listed.input_schema),
        function=run,
        read_only=read_only,
        source=f"mcp:{server.name}",
    )


def result_text(result: CallToolResult) -> str:
    """What the model reads of a result: its structured content as JSON, else its text blocks."""
    if result.structured_content is not None:
        return json.dumps(result.structured_content, ensure_ascii=False, default=str)
    parts = []
    for block in result.content:
        text = getattr(block, "text", None)
        parts.append(text if isinstance(text, str) else f"[{getattr(block, 'type', 'content')} omitted]")
    return "\n".join(parts)


def _set_mcp_attributes(span: trace.Span, server: McpServer, tool: str) -> None:
    span.set_attribute("mcp.method.name", "tools/call")
    span.set_attribute("mcp.server.name", server.name)
    span.set_attribute("mcp.tool.name", tool)
    if server.url is not None:
        parts = urlsplit(server.url)
        span.set_attribute("network.transport", "tcp")
        span.set_attribute("network.protocol.name", "http")
        if parts.hostname:
            span.set_attribute("server.address", parts.hostname)
        if parts.port:
            span.set_attribute("server.port", parts.port)
    else:
        span.set_attribute("network.transport", "pipe")
