"""``crews coordinator``: the long-lived services."""

from __future__ import annotations

import logging

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def coordinator() -> None:
        """Run a coordinator: plans jobs, dispatches steps, follows them to the end (SIGTERM stops it)."""
        from bus import event_loop
        from bus.settings import BusSettings
        from crews.coordinator.run import run_coordinator
        from crews.coordinator.settings import CrewsSettings

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
        event_loop.run(run_coordinator(CrewsSettings(), BusSettings()))
