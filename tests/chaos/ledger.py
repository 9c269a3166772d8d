"""A test-only tool with a side effect: ``ledger_append`` writes an entry to a ledger file, once per idempotency key.

Each invocation appends one JSON line ``{"key", "entry", "applied", "pid"}``
under an exclusive lock: ``applied`` is false when the key was seen before (the
tool honoured its idempotency key and did not apply the effect again). So the
file tells how often the tool ran per key (a repeated tool call) and how often
each entry was really applied (a double side effect, were the keys unstable).
The file is ``$CREWS_TEST_LEDGER``.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roles.tools.registry import Tool, ToolContext

LEDGER_ENV = "CREWS_TEST_LEDGER"


async def _append(context: ToolContext, arguments: dict[str, Any]) -> str:
    path = Path(os.environ[LEDGER_ENV])
    applied = await asyncio.to_thread(_write, path, context.idempotency_key, arguments["entry"])
    return json.dumps({"recorded": arguments["entry"], "applied": applied})


def _write(path: Path, key: str, entry: str) -> bool:
    """Append the invocation under a lock; True when the key is new (the effect is applied)."""
    with path.open("a+") as ledger:
        fcntl.flock(ledger, fcntl.LOCK_EX)  # workers in several processes append to one file
        ledger.seek(0)
        seen = {json.loads(line)["key"] for line in ledger if line.strip()}
        applied = key not in seen
        line = {"key": key, "entry": entry, "applied": applied, "pid": os.getpid()}
        ledger.write(json.dumps(line) + "\n")
        ledger.flush()
    return applied


LEDGER_TOOL = Tool(
    name="ledger_append",
    description="Append an entry to the ledger (a side effect: once per call).",
    parameters={
        "type": "object",
        "properties": {"entry": {"type": "string", "minLength": 1, "maxLength": 200}},
        "required": ["entry"],
        "additionalProperties": False,
    },
    function=_append,
)


@dataclass(frozen=True)
class LedgerLine:
    key: str
    entry: str
    applied: bool
    pid: int


def read_ledger(path: Path) -> list[LedgerLine]:
    if not path.exists():
        return []
    return [LedgerLine(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def repeated_calls(lines: list[LedgerLine]) -> int:
    """Tool invocations beyond the first for one idempotency key (a tool call run again)."""
    return sum(n - 1 for n in Counter(line.key for line in lines).values())


def double_effects(lines: list[LedgerLine]) -> int:
    """Entries applied more than once (a side effect done twice)."""
    return sum(n - 1 for n in Counter(line.entry for line in lines if line.applied).values())
