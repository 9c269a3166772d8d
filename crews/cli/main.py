"""The ``crews`` command: the one place that wires every part together.

Each group of commands lives in its own module of ``crews.cli`` and registers here.
"""

from __future__ import annotations

import typer

app = typer.Typer(name="crews", help="Run multi-agent crews in production.", no_args_is_help=True)


COMMAND_GROUPS = ("spec", "jobs", "approvals", "api", "coordinator", "role", "helm")
"""The modules of ``crews.cli`` that add commands (imports stay light: heavy work is lazy)."""


def _register() -> None:
    import importlib

    for name in COMMAND_GROUPS:
        importlib.import_module(f"crews.cli.{name}").register(app)


_register()


def main() -> None:
    """The console script: a user's mistake is one red line and exit code 1, never a traceback."""
    from crews.errors import CrewsError

    try:
        app()
    except CrewsError as exc:
        from rich.console import Console

        Console(stderr=True).print(f"[red]error:[/] {exc}", highlight=False)
        raise SystemExit(1) from None
