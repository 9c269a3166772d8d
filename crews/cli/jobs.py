"""``crews up``, ``run``, ``submit``, ``status``, ``logs``, ``cancel``: using crews from the terminal."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

InputsOption = Annotated[
    list[str] | None, typer.Option("--input", "-i", help="key=value (JSON values allowed)")
]
ApiOption = Annotated[str | None, typer.Option("--api", help="API URL (default: the running local stack)")]


def parse_inputs(pairs: list[str] | None) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r}: write inputs as key=value, e.g. -i topic=bees")
        try:
            inputs[key] = json.loads(value)
        except json.JSONDecodeError:
            inputs[key] = value
    return inputs


def api_url(explicit: str | None) -> str | None:
    """The API to talk to: --api, CREWS_API_URL, or the local stack's, if one runs."""
    if explicit:
        return explicit
    if os.environ.get("CREWS_API_URL"):
        return os.environ["CREWS_API_URL"]
    from crews.local.settings import StackSettings
    from crews.local.up import read_stack_info

    info = read_stack_info(StackSettings())
    return info.api_url if info else None


def register(app: typer.Typer) -> None:
    @app.command()
    def up(
        llm: Annotated[str | None, typer.Option(help="local LLM: vllm (default) or scripted")] = None,
        project: Annotated[
            list[Path] | None,
            typer.Option(
                help="a CrewAI project whose tools, guardrails and output models the crewai workers may "
                "import (as CREWS_PROJECT_PATHS); repeatable"
            ),
        ] = None,
    ) -> None:
        """Run the whole stack on this machine until Ctrl-C: NATS, Redis, LLM, API, coordinator, workers."""
        from crews.cli.job_commands import run_up_forever
        from crews.errors import CrewSpecError

        try:
            asyncio.run(run_up_forever(llm, project))
        except CrewSpecError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None

    @app.command()
    def run(
        crew_file: Annotated[Path, typer.Argument(help="crew YAML file")],
        inputs: InputsOption = None,
        api: ApiOption = None,
        llm: Annotated[str | None, typer.Option(help="if a stack is started: vllm or scripted")] = None,
    ) -> None:
        """Run a crew: register it, submit a job, show live progress, print the output and tokens."""
        from crews.cli.job_commands import run_crew

        try:
            code = asyncio.run(run_crew(crew_file, parse_inputs(inputs), api_url(api), llm))
        except asyncio.CancelledError:
            typer.echo("interrupted: the stack this command started is stopped", err=True)
            code = 130
        raise typer.Exit(code)

    @app.command()
    def submit(crew: str, inputs: InputsOption = None, api: ApiOption = None, key: str | None = None) -> None:
        """Submit a job of a registered crew; prints the job id."""
        from crews.cli.job_commands import client_for

        async def go() -> None:
            async with client_for(api_url(api)) as client:
                job = await client.submit(crew, parse_inputs(inputs), key)
                typer.echo(job.id)

        asyncio.run(go())

    @app.command()
    def status(job: Annotated[str | None, typer.Argument()] = None, api: ApiOption = None) -> None:
        """A job's status, plan and usage; without a job id, recent jobs and the stack's workers."""
        from crews.cli.job_commands import show_status

        asyncio.run(show_status(job, api_url(api)))

    @app.command()
    def logs(
        job: str, follow: Annotated[bool, typer.Option("--follow", "-f")] = False, api: ApiOption = None
    ) -> None:
        """A job's events, one line each (-f: keep following until the job ends)."""
        from crews.cli.job_commands import show_logs

        asyncio.run(show_logs(job, follow, api_url(api)))

    @app.command()
    def cancel(job: str, api: ApiOption = None) -> None:
        """Cancel a running job."""
        from crews.cli.job_commands import client_for

        async def go() -> None:
            async with client_for(api_url(api)) as client:
                record = await client.cancel(job)
                typer.echo(f"{job}: {record.status}")

        asyncio.run(go())
