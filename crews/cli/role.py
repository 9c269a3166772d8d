"""``crews role <crew>/<role>``: a role worker process (the runtime is imported only when the command runs)."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("role")
    def role(
        target: Annotated[
            str, typer.Argument(metavar="CREW/ROLE", help="the crew and the role key, e.g. research/writer")
        ],
    ) -> None:
        """Run a worker for one role of a crew: it takes that role's steps from its queue until SIGTERM.

        Configured by the environment: CREWS_NATS_URL, CREWS_REDIS_URL, CREWS_LLM_URLS, CREWS_WORKER_CONCURRENCY, …
        Prints "role CREW/ROLE ready" once it is taking work.
        """
        from roles.process import main, parse_target
        from roles.tools.mcp.config import McpConfigError

        try:
            crew, name = parse_target(target)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="CREW/ROLE") from exc
        try:
            main(crew, name)
        except McpConfigError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
