"""A role worker with the test-only ``lookup_facts`` tool: ``python -m tests.security.flaky_worker <crew>/<role>``.

``lookup_facts`` fails on its first call the way a real tool fails on an
outage: its error quotes where it connects to (``$LOOKUP_DB_URL``, a secret of
the tool's: the test puts a canary there). It marks the failure in
``$LOOKUP_MARKER`` (a file), so the retried call finds it and answers.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

from pydantic import Field

from roles.tools.python import python_tool, tool
from tests.chaos.worker import main

DB_URL_ENV = "LOOKUP_DB_URL"
MARKER_ENV = "LOOKUP_MARKER"
FACTS = "bees dance to say where the flowers are"


@tool(read_only=True)
def lookup_facts(topic: Annotated[str, Field(max_length=80)]) -> str:
    """Look facts about a topic up in the facts database."""
    marker = Path(os.environ[MARKER_ENV])
    if not marker.exists():
        marker.write_text("failed once")
        raise ConnectionError(f"cannot reach {os.environ[DB_URL_ENV]} to look {topic!r} up: connection reset")
    return f"{topic}: {FACTS}"


LOOKUP_TOOL = python_tool(lookup_facts)

if __name__ == "__main__":
    main(sys.argv[1], [LOOKUP_TOOL])
