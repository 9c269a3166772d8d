"""A role worker process with the test-only ``ledger_append`` tool: ``python -m tests.chaos.worker <crew>/<role>``.

The same process as ``crews role`` (``roles.process``), with one more tool registered.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from bus.settings import BusSettings
from inference.settings import InferenceSettings
from roles.process import parse_target, run_role
from roles.settings import RoleSettings
from roles.tools.registry import default_registry
from tests.chaos.ledger import LEDGER_TOOL


def main(target: str) -> None:
    crew, role = parse_target(target)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    tools = default_registry()
    tools.register(LEDGER_TOOL)

    def ready() -> None:
        sys.stdout.write(f"role {crew}/{role} ready\n")
        sys.stdout.flush()

    settings = (BusSettings(), RoleSettings(), InferenceSettings())
    asyncio.run(run_role(crew, role, *settings, on_ready=ready, tools=tools))


if __name__ == "__main__":
    main(sys.argv[1])
