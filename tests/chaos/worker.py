"""A role worker process with test-only tools: ``python -m tests.chaos.worker <crew>/<role>`` adds ``ledger_append``.

The same process as ``crews role`` (``roles.process.main``), with more tools registered.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from roles.process import main as role_main
from roles.process import parse_target
from roles.tools.registry import Tool, default_registry
from tests.chaos.ledger import LEDGER_TOOL


def main(target: str, extra_tools: Iterable[Tool] = (LEDGER_TOOL,)) -> None:
    """Run the role ``<crew>/<role>`` with the built-in tools and ``extra_tools`` (other test workers reuse it)."""
    crew, role = parse_target(target)
    tools = default_registry()
    for extra in extra_tools:
        tools.register(extra)
    role_main(crew, role, tools=tools)


if __name__ == "__main__":
    main(sys.argv[1])
