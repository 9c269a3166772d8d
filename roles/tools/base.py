"""A tool, as every provider (Python functions, MCP servers) hands it to a step's ``ToolSet``.

- ``Tool``: its name as a crew file writes it (``calculator``, ``payments.refund``),
  the name the model sees (``payments__refund``: OpenAI-style function names
  allow no dots), a description, the JSON schema of its arguments, whether it
  only reads (no approval needed by default), and the async function that runs it.
- ``ToolContext``: what a call knows — job, step, role, the job's shared memory,
  and for one call its id and the idempotency key a tool with side effects must
  honour (``<job>:<step>:<call id>:<sha256 of the arguments, 16 hex>``: stable
  when a redelivered step makes the same call again, different for other
  arguments).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from roles.errors import ToolArgumentsInvalid
from roles.step.memory import SharedMemory

TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64})?$")
MODEL_NAME_MAX = 64
SERVER_SEPARATOR = "__"
"""Joins server and tool in the name the model sees: ``payments.refund`` → ``payments__refund``."""


def model_name(name: str) -> str:
    """The function name the model sees for the crew-file tool name ``name``."""
    return name.replace(".", SERVER_SEPARATOR)


@dataclass(frozen=True)
class ToolContext:
    """The job, step and role of a call, the job's shared memory, and (for one call) its id and digest."""

    job: str
    step: str
    role: str
    memory: SharedMemory
    call_id: str = ""
    arguments_sha256: str = ""
    call_key: str = ""
    """The key the caller gives this call (the native loop: ``<job>:<step>:<turn>:<call>``), if any."""

    @property
    def idempotency_key(self) -> str:
        """Stable per step and call: a tool with side effects does them once per key."""
        if self.call_key:
            return self.call_key
        if not self.call_id:
            return f"{self.job}:{self.step}"
        return f"{self.job}:{self.step}:{self.call_id}:{self.arguments_sha256[:16]}"

    def for_call(self, call_id: str, arguments_sha256: str, call_key: str = "") -> ToolContext:
        return dataclasses.replace(
            self, call_id=call_id, arguments_sha256=arguments_sha256, call_key=call_key
        )


ToolFunction = Callable[[ToolContext, dict[str, Any]], Awaitable[str]]


@dataclass(frozen=True)
class Tool:
    """A function the model may call, described by a JSON schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]
    function: ToolFunction
    read_only: bool = False
    """Changes nothing outside the job: needs no approval unless the operator or crew file asks for one."""
    builtin: bool = False
    """Offered to every native role of a crew with shared memory (``memory_read``, ``memory_write``)."""
    source: str = "python"
    """Where it comes from: ``python``, or ``mcp:<server>``."""
    validator: Draft202012Validator = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not TOOL_NAME.fullmatch(self.name) or len(model_name(self.name)) > MODEL_NAME_MAX:
            raise ValueError(
                f"tool name {self.name!r}: use 1-64 letters, digits, '_' or '-' "
                f"(an MCP tool: <server>.<tool>, at most {MODEL_NAME_MAX} characters with '__' for the dot)"
            )
        if SERVER_SEPARATOR in self.name and "." not in self.name:
            raise ValueError(f"tool name {self.name!r}: '__' is reserved for MCP tools (<server>__<tool>)")
        Draft202012Validator.check_schema(self.parameters)
        object.__setattr__(self, "validator", Draft202012Validator(self.parameters))

    @property
    def model_name(self) -> str:
        return model_name(self.name)

    def spec(self) -> dict[str, Any]:
        """The tool as an OpenAI chat ``tools`` entry."""
        return {
            "type": "function",
            "function": {
                "name": self.model_name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }

    def check_arguments(self, arguments: dict[str, Any]) -> None:
        """``ToolArgumentsInvalid`` (for the model to read) unless ``arguments`` match the schema."""
        error = best_match(self.validator.iter_errors(arguments))
        if error is not None:
            where = f" (at {error.json_path})" if error.path else ""
            raise ToolArgumentsInvalid(
                f"the arguments of {self.model_name} do not match its schema: {error.message}{where}; "
                f"call it again with arguments that match {json.dumps(self.parameters)}"
            )
