"""Python tools: a typed function is a tool; its JSON schema comes from its signature.

A package offers tools through the entry-point group ``crews.tools``::

    # pyproject.toml of the package
    [project.entry-points."crews.tools"]
    lookup_weather = "weather_tools:lookup_weather"

    # weather_tools.py
    from typing import Annotated
    from pydantic import Field
    from roles.tools.python import tool

    @tool(read_only=True)
    async def lookup_weather(city: Annotated[str, Field(max_length=80)]) -> dict[str, float]:
        "The weather in a city."
        ...

The parameters (pydantic types, ``Annotated[..., Field(...)]`` constraints)
become the JSON schema the model sees (pydantic's ``TypeAdapter``); a
parameter annotated ``ToolContext`` receives the call's context (job, step,
shared memory, idempotency key) and is not shown to the model. The function
may be sync (it runs in a thread) or async; a ``str`` result goes to the model
as it is, anything else as JSON. A tool is ``read_only=False`` unless it says
so, which means its calls wait for a person's approval unless the crew file
says ``approval: none``. The entry point's name is the tool's name unless the
decorator sets one.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Any, TypeVar, get_type_hints, overload

from pydantic import TypeAdapter, ValidationError
from pydantic_core import ArgsKwargs, to_json

from roles.errors import ToolArgumentsInvalid
from roles.tools.base import Tool, ToolContext

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "crews.tools"
_MARK = "__crews_tool__"
F = TypeVar("F", bound=Callable[..., Any])


@overload
def tool(function: F, /) -> F: ...
@overload
def tool(
    *, name: str | None = None, description: str | None = None, read_only: bool = False
) -> Callable[[F], F]: ...
def tool(
    function: F | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    read_only: bool = False,
) -> F | Callable[[F], F]:
    """Mark a function as a tool (the function stays callable as it was)."""

    def mark(fn: F) -> F:
        setattr(fn, _MARK, {"name": name, "description": description, "read_only": read_only})
        return fn

    return mark(function) if function is not None else mark


def python_tool(
    function: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    read_only: bool | None = None,
    builtin: bool = False,
) -> Tool:
    """The ``Tool`` for a typed function; ``ValueError`` when its signature cannot be a schema."""
    marked: dict[str, Any] = getattr(function, _MARK, {})
    tool_name = name or marked.get("name") or function.__name__
    text = description or marked.get("description") or inspect.getdoc(function) or ""
    only_reads = read_only if read_only is not None else bool(marked.get("read_only", False))
    adapter, context_param = _arguments_adapter(function, tool_name)
    is_async = inspect.iscoroutinefunction(function)

    async def run(context: ToolContext, arguments: dict[str, Any]) -> str:
        try:
            values: dict[str, Any] = adapter.validate_python(ArgsKwargs((), arguments))
        except ValidationError as exc:
            raise ToolArgumentsInvalid(f"the arguments of {tool_name} are not valid: {exc}") from exc
        if context_param is not None:
            values[context_param] = context
        result = await function(**values) if is_async else await asyncio.to_thread(function, **values)
        return result if isinstance(result, str) else to_json(result).decode()

    return Tool(
        name=tool_name,
        description=text,
        parameters=adapter.json_schema(),
        function=run,
        read_only=only_reads,
        builtin=builtin,
    )


def _arguments_adapter(function: Callable[..., Any], name: str) -> tuple[TypeAdapter[Any], str | None]:
    """A ``TypeAdapter`` of the function's arguments without its ``ToolContext`` parameter."""
    try:
        hints = get_type_hints(function, include_extras=True)
    except NameError as exc:
        raise ValueError(f"tool {name}: cannot read the types of its parameters ({exc})") from exc
    signature = inspect.signature(function)
    params, context_param = [], None
    for param in signature.parameters.values():
        if hints.get(param.name) is ToolContext:
            context_param = param.name
            continue
        if param.name not in hints:
            raise ValueError(f"tool {name}: parameter {param.name!r} has no type annotation")
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY):
            raise ValueError(f"tool {name}: parameter {param.name!r} must be a plain named parameter")
        params.append(param.replace(kind=param.KEYWORD_ONLY))

    def arguments(**values: Any) -> dict[str, Any]:
        return values

    arguments.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=params, return_annotation=inspect.Signature.empty
    )
    arguments.__annotations__ = {param.name: hints[param.name] for param in params}
    arguments.__name__ = arguments.__qualname__ = f"{name}_arguments"
    adapter: TypeAdapter[Any] = TypeAdapter(arguments)  # type: ignore[arg-type]  # a callable: its arguments
    return adapter, context_param


def entry_point_tools(group: str = ENTRY_POINT_GROUP) -> Iterator[Tool]:
    """Every tool installed packages register under ``group``; a broken one is logged and skipped."""
    for point in entry_points(group=group):
        try:
            loaded = point.load()
            yield loaded if isinstance(loaded, Tool) else python_tool(loaded, name=point.name)
        except Exception:  # a broken package must not stop the worker: its tool is then missing, and said so
            log.exception("the tool %r (entry point %s) cannot be loaded: skipped", point.name, point.value)


def entry_point_names(group: str = ENTRY_POINT_GROUP) -> frozenset[str]:
    """The names of the installed tools, without importing them."""
    return frozenset(point.name for point in entry_points(group=group))
