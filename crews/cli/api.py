"""``crews api``: serve the HTTP API with uvicorn."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from roles.tools.mcp.listing import DeclaredTools


def register(app: typer.Typer) -> None:
    app.command()(api)


def api(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: CREWS_API_HOST, else 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port (default: CREWS_API_PORT, else 8080; 0: a free one).")
    ] = None,
) -> None:
    """Serve the HTTP API: crews, jobs, job events (SSE), health and metrics (SIGTERM stops it)."""
    import asyncio
    import logging

    from crews.api.server import serve
    from crews.api.settings import ApiSettings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = ApiSettings()
    if host is not None:
        settings.api_host = host
    if port is not None:
        settings.api_port = port
    from crews.errors import CrewsError

    try:
        asyncio.run(serve(settings, tools=declared_tools()))
    except CrewsError as exc:
        raise typer.Exit(_fail(str(exc))) from None


def _fail(message: str) -> int:
    typer.echo(f"error: {message}", err=True)
    return 1


def declared_tools() -> DeclaredTools:
    """The operator's MCP servers and the Python tools installed here: crews' tool names are checked."""
    from roles.tools.mcp.config import McpConfigError, McpSettings
    from roles.tools.mcp.listing import DeclaredTools

    try:
        return DeclaredTools(McpSettings().servers())
    except McpConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
