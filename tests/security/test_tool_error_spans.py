"""A failing tool's span (status, events, attributes) and the worker's logs never carry the call's arguments.

Tool errors often quote what they were given (pydantic's validation errors
print the input value; a tool's own message may echo an argument or a secret
of its backing service). The span says that the call failed and how (the
error's type); what it said stays with the model (a ``ToolError``) or nowhere
(a crash).
"""

from __future__ import annotations

import logging
from typing import Annotated

import pytest
import redis.asyncio as aioredis
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from pydantic import AfterValidator

from inference.results import ToolCall
from roles.errors import ToolArgumentsInvalid, ToolCrashed, ToolError
from roles.step.memory import SharedMemory
from roles.tools.base import ToolContext
from roles.tools.python import python_tool
from roles.tools.toolset import StepTool, ToolSet

CANARY = "canary-arg-7f3a9c2e41"


def refuse(account: str) -> str:
    """Looks an account up; refuses with a message that quotes the account."""
    raise ToolError(f"no account {account}")


def crash(account: str) -> str:
    """Looks an account up; crashes with a message that quotes the account."""
    raise RuntimeError(f"connection reset while reading {account}")


def must_be_digits(value: str) -> str:
    if not value.isdigit():
        raise ValueError("an account is digits")
    return value


def digits(account: Annotated[str, AfterValidator(must_be_digits)]) -> str:
    """Looks an account up by number (a check the JSON schema cannot say: pydantic's, inside the tool)."""
    return account


def toolset(redis_client: aioredis.Redis, function: object) -> ToolSet:
    tool = python_tool(function, read_only=True)  # type: ignore[arg-type]
    context = ToolContext(job="j", step="s", role="clerk", memory=SharedMemory(redis_client, "mem:j"))
    return ToolSet([StepTool(tool)], context, max_output_chars=1000)


def texts_of(span: ReadableSpan) -> str:
    """Everything a span exports as text: name, attributes, status, events and their attributes."""
    parts = [span.name, str(dict(span.attributes or {})), str(span.status.description)]
    for event in span.events:
        parts += [event.name, str(dict(event.attributes or {}))]
    return "\n".join(parts)


@pytest.mark.parametrize(
    ("function", "raised", "error_type"),
    [
        (refuse, ToolError, "ToolError"),
        (digits, ToolArgumentsInvalid, "ToolArgumentsInvalid"),
        (crash, ToolCrashed, "RuntimeError"),
    ],
    ids=["tool-error", "invalid-inside-the-tool", "crash"],
)
async def test_a_failing_tools_span_carries_its_error_type_and_never_its_arguments(
    function: object,
    raised: type[Exception],
    error_type: str,
    redis_client: aioredis.Redis,
    spans: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tools = toolset(redis_client, function)
    call = ToolCall(id="call-1", name=function.__name__, arguments={"account": f"x-{CANARY}"})  # type: ignore[attr-defined]
    caplog.set_level(logging.DEBUG)

    with pytest.raises(raised) as caught:
        await tools.call(call)

    [span] = [s for s in spans.get_finished_spans() if s.name.startswith("execute_tool")]
    assert span.status.status_code == StatusCode.ERROR
    assert span.status.description == "the tool call failed"
    assert span.attributes is not None and span.attributes["error.type"] == error_type
    assert CANARY not in texts_of(span)
    assert CANARY not in caplog.text
    if raised is ToolCrashed:  # a crash: nothing of its message anywhere, the cause not chained
        assert CANARY not in str(caught.value) and caught.value.__suppress_context__
        assert "RuntimeError" in caplog.text  # the operator still learns what and where
    else:  # an error for the model: the model may read it (it wrote the arguments)
        assert CANARY in str(caught.value)
