"""``crews validate``, ``crews import``, ``crews schema``: crew files from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from crews.spec.crewai.importer import Imported
    from crews.spec.models import CrewSpec

MapOption = Annotated[
    list[str] | None,
    typer.Option("--map", help="Give a CrewAI task its agent: TASK=AGENT (repeatable).", show_default=False),
]


def register(app: typer.Typer) -> None:
    app.command()(validate)
    app.command("import")(import_)
    app.command()(schema)


def validate(
    path: Annotated[
        Path, typer.Argument(help="A crew file, a CrewAI agents.yaml, or a CrewAI project directory.")
    ],
    map_: MapOption = None,
    project: Annotated[
        list[Path] | None,
        typer.Option(
            help="A CrewAI project the crewai workers will import (as `crews up --project`): check that the "
            "crew's project: references are files of it defining those names (nothing is run); repeatable. "
            "Default for a project directory: itself.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Check a crew file (or CrewAI project) and show its inputs, roles and steps."""
    imported = _load(path, _mapping(map_))
    _warn(imported)
    crew_file = path.is_file() and path.name not in ("agents.yaml", "tasks.yaml")
    if crew_file:
        _check_tools(imported.spec, path)
    _check_project_refs(
        imported.spec, path if crew_file else None, project or ([path] if path.is_dir() else [])
    )
    _summary(imported.spec)


def _check_project_refs(spec: CrewSpec, crew_file: Path | None, projects: list[Path]) -> None:
    """The crew's ``project:`` references against the declared projects' files (read, never imported)."""
    from crews.errors import CrewSpecError
    from crews.spec.crewai.importer import project_package_dir
    from crews.spec.load import problems_in_text
    from crews.spec.project_refs import check_resolves, project_refs

    if next(project_refs(spec), None) is None:
        return
    if not projects:
        typer.echo(
            "note: project: references were checked for syntax only: pass --project DIR (the CrewAI "
            "project the crewai workers will import) to check that they resolve",
            err=True,
        )
        return
    try:
        problems = check_resolves(spec, [project_package_dir(directory) for directory in projects])
    except CrewSpecError as exc:
        _fail(exc)
    if not problems:
        return
    if crew_file is not None:
        _fail(problems_in_text(crew_file.read_text(encoding="utf-8"), str(crew_file), problems))
    _fail(ValueError("\n".join(f"{problem.field}: {problem.message}" for problem in problems)))


def _check_tools(spec: CrewSpec, path: Path) -> None:
    """With the operator's MCP declarations here, check the tool names; else say that only syntax was."""
    import asyncio

    from crews.spec.load import problems_in_text
    from crews.spec.tools import AvailableTools, check_tool_names
    from roles.tools.mcp.config import McpConfigError, McpSettings
    from roles.tools.mcp.listing import DeclaredTools

    if not any("." in tool.name for role in spec.all_roles().values() for tool in role.tools):
        return  # no MCP tools: Python tools are checked by the API and by the workers that run them
    settings = McpSettings()
    if not settings.declared:
        typer.echo(
            "note: tool names were checked for syntax only: no MCP servers are declared here "
            "(CREWS_MCP_SERVERS or CREWS_MCP_SERVERS_FILE); the API checks them against the operator's "
            "servers when the crew is registered",
            err=True,
        )
        return
    try:
        tools = DeclaredTools(settings.servers())
    except McpConfigError as exc:
        _fail(exc)

    async def listed() -> AvailableTools:
        try:
            return await tools.available()
        finally:
            await tools.aclose()

    available = asyncio.run(listed())
    problems = check_tool_names(spec, available)
    if problems:
        _fail(problems_in_text(path.read_text(encoding="utf-8"), str(path), problems))


def import_(
    directory: Annotated[
        Path, typer.Argument(help="A CrewAI project (config/agents.yaml, config/tasks.yaml).")
    ],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write here instead of stdout.")
    ] = None,
    map_: MapOption = None,
    name: Annotated[str | None, typer.Option(help="Crew name (default: the directory's name).")] = None,
) -> None:
    """Turn a CrewAI project into a crew file."""
    from crews.errors import CrewSpecError
    from crews.spec.crewai.importer import import_project
    from crews.spec.dump import dump_crew

    try:
        imported = import_project(directory, name=name, mapping=_mapping(map_))
    except CrewSpecError as exc:
        _fail(exc)
    _warn(imported)
    text = f"# Imported from the CrewAI project {directory} by `crews import`.\n" + dump_crew(imported.spec)
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    spec = imported.spec
    typer.echo(
        f"wrote {output}: crew '{spec.name}', {len(spec.roles)} roles, {len(spec.tasks)} tasks", err=True
    )


def schema() -> None:
    """Print the crew file's JSON schema (for editors)."""
    import json

    from crews.spec.load import crew_json_schema

    typer.echo(json.dumps(crew_json_schema(), indent=2))


def _mapping(pairs: list[str] | None) -> dict[str, str]:
    mapping = {}
    for pair in pairs or []:
        task, sep, agent = pair.partition("=")
        if not sep or not task.strip() or not agent.strip():
            raise typer.BadParameter(f"expected TASK=AGENT, got '{pair}'", param_hint="--map")
        mapping[task.strip()] = agent.strip()
    return mapping


def _load(path: Path, mapping: dict[str, str]) -> Imported:
    from crews.errors import CrewSpecError
    from crews.spec.crewai.importer import Imported, import_project, load_crewai_pair
    from crews.spec.load import load_crew

    try:
        if path.is_dir():
            return import_project(path, mapping=mapping)
        if path.name in ("agents.yaml", "tasks.yaml"):
            agents, tasks = path.with_name("agents.yaml"), path.with_name("tasks.yaml")
            return load_crewai_pair(agents, tasks, mapping=mapping)
        if mapping:
            raise typer.BadParameter("only for CrewAI projects", param_hint="--map")
        return Imported(load_crew(path), ())
    except CrewSpecError as exc:
        _fail(exc)


def _fail(exc: Exception) -> NoReturn:
    typer.echo(str(exc), err=True)
    raise typer.Exit(1)


def _warn(imported: Imported) -> None:
    for warning in imported.warnings:
        typer.echo(f"warning: {warning}", err=True)


def _summary(spec: CrewSpec) -> None:
    from rich.console import Console
    from rich.table import Table

    from crews.plan.planner import MANAGER_STEP, dependencies

    def table(title: str, *columns: str) -> Table:
        out = Table(title=title, title_justify="left")
        for column in columns:
            out.add_column(column, overflow="fold")
        return out

    console = Console()
    console.print(
        f"[bold]{spec.name}[/bold]: {spec.process} crew, {len(spec.roles)} roles, {len(spec.tasks)} tasks"
    )
    if spec.inputs:
        inputs = table("Inputs", "input", "type", "default", "description")
        for key, item in spec.inputs.items():
            inputs.add_row(
                key, item.type, "(required)" if item.required else repr(item.default), item.description
            )
        console.print(inputs)
    roles = table("Roles", "role", "title", "engine", "tools", "workers")
    for key, role in spec.all_roles().items():
        tools = ", ".join(t.name + (" (approval)" if t.approval == "required" else "") for t in role.tools)
        roles.add_row(key, role.role.strip(), role.engine, tools, f"{role.scaling.min}-{role.scaling.max}")
    console.print(roles)
    steps = table("Steps", "step", "role", "waits for", "receives")
    if spec.manager_role is not None:
        steps.add_row(MANAGER_STEP, spec.manager_role, "", "")
    for key, (waits, context) in dependencies(spec).items():
        steps.add_row(key, spec.tasks[key].agent or "(manager assigns)", ", ".join(waits), ", ".join(context))
    console.print(steps)
