"""One MCP session per server per worker: connected on first use, reconnected when it drops.

The official ``mcp`` SDK (2.x, imported here only, in a thread: it is heavy) holds the session in a
task of its own (its client lives in an anyio task group, which must be left
by the task that entered it); calls from any step go through it.

- ``list_tools``: cached for the server's ``list_ttl_s``; a
  ``notifications/tools/list_changed`` drops the cache.
- ``call_tool``: bounded by ``timeout_s``; a transport failure (refused
  connection, session closed) reconnects and retries with exponential backoff
  up to ``retries`` times, then raises ``ToolUnavailable`` (the step fails with
  the reason). An ``isError`` result, a protocol error and a malformed answer
  are the call's failure (``ToolError``, which the model reads), never the
  worker's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from roles.errors import ToolError, ToolUnavailable
from roles.tools.mcp.config import McpConfigError, McpServer

if TYPE_CHECKING:
    from mcp import Client
    from mcp.types import CallToolResult
    from mcp.types import Tool as McpTool

log = logging.getLogger(__name__)
BACKOFF_BASE_S = 0.2
BACKOFF_MAX_S = 5.0
CONNECTION_CLOSED = -32000


class McpConnection:
    """The worker's session with one declared MCP server."""

    def __init__(self, server: McpServer) -> None:
        self.server = server
        self._lock = asyncio.Lock()
        self._client: Client | None = None
        self._holder: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._listing: tuple[float, list[McpTool]] | None = None
        self.connects = 0
        """How many sessions were opened (for tests and logs)."""

    async def list_tools(self) -> list[McpTool]:
        """The server's tools (every page), from the cache while it is fresh."""
        cached = self._listing
        if cached is not None and time.monotonic() - cached[0] < self.server.list_ttl_s:
            return cached[1]

        async def fetch(client: Client) -> list[McpTool]:
            tools: list[McpTool] = []
            cursor: str | None = None
            for _ in range(100):
                page = await client.list_tools(cursor=cursor)
                tools.extend(page.tools)
                cursor = page.next_cursor
                if cursor is None:
                    break
            return tools

        tools: list[McpTool] = await self._with_retries("tools/list", fetch)
        self._listing = (time.monotonic(), tools)
        return tools

    async def call_tool(self, name: str, arguments: dict[str, Any], meta: dict[str, Any]) -> CallToolResult:
        """One ``tools/call``; ``ToolError`` for the model, ``ToolUnavailable`` when the server stays away."""
        timeout = self.server.timeout_s

        async def call(client: Client) -> CallToolResult:
            return await client.call_tool(name, arguments, read_timeout_seconds=timeout, meta=meta)  # type: ignore[arg-type]

        result: CallToolResult = await self._with_retries(f"tools/call {name}", call)
        return result

    def forget_tools(self) -> None:
        self._listing = None

    async def aclose(self) -> None:
        async with self._lock:
            await self._disconnect()

    async def _with_retries(self, what: str, action: Any) -> Any:
        from mcp import MCPError

        server = self.server
        last = ""
        for attempt in range(server.retries + 1):
            if attempt:
                await asyncio.sleep(min(BACKOFF_BASE_S * 2 ** (attempt - 1), BACKOFF_MAX_S))
            try:
                client = await self._connect()
            except McpConfigError as exc:
                raise ToolUnavailable(str(exc), server=server.name) from None
            except Exception as exc:  # noqa: BLE001 - a transport edge: whatever the SDK raised, the server is not there
                last = _reason(exc)
                log.warning("MCP server %s: cannot connect (attempt %d): %s", server.name, attempt + 1, last)
                continue
            try:
                async with asyncio.timeout(server.timeout_s):
                    return await action(client)
            except TimeoutError:
                raise ToolError(
                    f"MCP server {server.name!r} did not answer {what} within {server.timeout_s:g} s"
                ) from None
            except MCPError as exc:
                if exc.code != CONNECTION_CLOSED:
                    raise ToolError(f"MCP server {server.name!r} refused {what}: {exc.message}") from None
                last = "the connection closed"
            except ValidationError as exc:
                raise ToolError(
                    f"MCP server {server.name!r} answered {what} with a malformed result: {exc}"
                ) from None
            except Exception as exc:  # noqa: BLE001 - a transport edge: drop the session, try a new one
                last = _reason(exc)
            log.warning("MCP server %s: %s failed (attempt %d): %s", server.name, what, attempt + 1, last)
            async with self._lock:
                await self._disconnect()
        raise ToolUnavailable(
            f"MCP server {server.name!r} ({server.url or server.command}) is unreachable: {last} "
            f"(after {server.retries + 1} attempts); check that it runs and that the worker may reach it",
            server=server.name,
        )

    async def _connect(self) -> Client:
        await asyncio.to_thread(import_sdk)  # seconds of imports the first time: never on the event loop
        async with self._lock:
            if self._client is not None and self._holder is not None and not self._holder.done():
                return self._client
            await self._disconnect()
            ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
            self._stop = asyncio.Event()
            self._holder = asyncio.create_task(self._hold(ready), name=f"mcp {self.server.name}")
            self._client = await ready
            self.connects += 1
            return self._client

    async def _hold(self, ready: asyncio.Future[Client]) -> None:
        """Enter the SDK's client, hand it over, and keep it open until asked to stop."""
        from mcp import Client

        try:
            async with contextlib.AsyncExitStack() as stack:
                transport = await self._transport(stack)
                client = await stack.enter_async_context(
                    Client(
                        transport,
                        cache=None,
                        read_timeout_seconds=self.server.timeout_s,
                        message_handler=self._on_message,
                    )
                )
                ready.set_result(client)
                await self._stop.wait()
        except Exception as exc:  # noqa: BLE001 - the session ended with an error: the next call reconnects
            if not ready.done():
                ready.set_exception(exc)
            else:
                log.info("MCP server %s: session ended: %s", self.server.name, _reason(exc))

    async def _transport(self, stack: contextlib.AsyncExitStack) -> Any:
        from mcp import StdioServerParameters
        from mcp.client.stdio import stdio_client
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client

        server = self.server
        if server.url is not None:
            http = await stack.enter_async_context(create_mcp_http_client(headers=server.headers()))
            return streamable_http_client(server.url, http_client=http)
        assert server.command is not None
        params = StdioServerParameters(command=server.command, args=server.args, env=server.child_env())
        return stdio_client(params)

    async def _on_message(self, message: Any) -> None:
        from mcp.types import ToolListChangedNotification

        if isinstance(message, ToolListChangedNotification):
            self.forget_tools()

    async def _disconnect(self) -> None:
        holder, self._holder, self._client = self._holder, None, None
        if holder is not None:
            self._stop.set()
            await asyncio.gather(holder, return_exceptions=True)


def import_sdk() -> None:
    """Import the parts of the ``mcp`` SDK a session uses (call it in a thread: it takes a while once)."""
    import mcp
    import mcp.client.stdio
    import mcp.client.streamable_http
    import mcp.shared._httpx_utils
    import mcp.types  # noqa: F401


def _reason(exc: BaseException) -> str:
    """The innermost message of an (exception group of an) error."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
