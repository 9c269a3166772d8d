"""The ``crews`` command: the one place that wires every part together.

Each group of commands lives in its own ``cli_*`` module and registers here.
"""

from __future__ import annotations

import typer

app = typer.Typer(name="crews", help="Run multi-agent crews in production.", no_args_is_help=True)


def _register() -> None:
    # Each cli_* module adds its commands to ``app``; imports stay light (heavy work is lazy).
    import importlib
    import pkgutil

    import crews

    for info in pkgutil.iter_modules(crews.__path__):
        if info.name.startswith("cli_"):
            importlib.import_module(f"crews.{info.name}").register(app)


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
