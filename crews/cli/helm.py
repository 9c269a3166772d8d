"""``crews helm values <crew files…>``: the Helm chart's values for those crews, on stdout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    helm = typer.Typer(name="helm", help="Deploy crews on Kubernetes with the Helm chart (helm/crews).")
    app.add_typer(helm)

    @helm.command()
    def values(
        files: Annotated[list[Path], typer.Argument(help="Crew files, one crew each.", show_default=False)],
    ) -> None:
        """Print the chart values for these crews: one worker Deployment and KEDA ScaledObject per role."""
        from crews.deploy.helm_values import values_yaml
        from crews.errors import CrewSpecError
        from crews.spec.load import load_crew

        try:
            text = values_yaml([load_crew(path) for path in files])
        except CrewSpecError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
        typer.echo(text, nl=False)
