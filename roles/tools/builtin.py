"""The tools crews ships: the shared-memory built-ins and the ``calculator`` example, as typed functions.

``memory_read`` and ``memory_write`` are offered to every native role of a
crew with shared memory; ``calculator`` is registered through the
``crews.tools`` entry point like any package's tool (see ``roles.tools.python``).
"""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import Field

from roles.tools import _calculator
from roles.tools.base import Tool, ToolContext
from roles.tools.python import python_tool, tool

MemoryKey = Annotated[str, Field(min_length=1, max_length=200, description="name of the entry")]


async def memory_read(context: ToolContext, key: MemoryKey | None = None) -> str:
    """Read the crew's shared memory for this job: the entry under `key`, or every entry when no key is given."""
    if key is None:
        return json.dumps(await context.memory.read_all(), ensure_ascii=False)
    value = await context.memory.read(key)
    if value is None:
        return json.dumps({"key": key, "value": None, "note": "nothing is written under this key yet"})
    return json.dumps({"key": key, "value": value}, ensure_ascii=False)


async def memory_write(
    context: ToolContext, key: MemoryKey, value: Annotated[str, Field(max_length=65_536)]
) -> str:
    """Write `value` under `key` in the crew's shared memory, for the other roles of this job to read."""
    await context.memory.write(key, value)
    return json.dumps({"written": key}, ensure_ascii=False)


@tool(read_only=True)
def calculator(expression: Annotated[str, Field(min_length=1, max_length=200)]) -> str:
    """Evaluate an arithmetic expression: numbers, + - * / // % ** and parentheses."""
    return str(_calculator.evaluate(expression))


# The job's memory is the crew's own state, not the world: its tools need no approval.
MEMORY_READ: Tool = python_tool(memory_read, read_only=True, builtin=True)
MEMORY_WRITE: Tool = python_tool(memory_write, read_only=True, builtin=True)
CALCULATOR: Tool = python_tool(calculator)
