"""Errors in crew files, as a person reads them: file, line, column, field, message.

A check finds a :class:`Problem` (a path into the document and a message); the
loader, which knows where each path is written, turns problems into located
:class:`SpecIssue` s and raises :class:`CrewFileError`. A crew built in code
rather than read from a file raises :class:`CrewSpecProblems`, which carries
the same problems without positions.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from crews.errors import CrewSpecError

PathPart = str | int
DocPath = tuple[PathPart, ...]

_PLAIN = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Problem:
    """One mistake at ``path`` in a document; ``at_key`` points at the key rather than its value."""

    path: DocPath
    message: str
    at_key: bool = False

    @property
    def field(self) -> str:
        return field_name(self.path)


@dataclass(frozen=True)
class SpecIssue:
    """One located mistake: what a person needs to find and fix it."""

    file: str
    line: int
    column: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class CrewSpecProblems(CrewSpecError):
    """A crew built in code breaks a rule of the crew file; positions are unknown."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(f"{p.field or '(top level)'}: {p.message}" for p in self.problems))


class CrewFileError(CrewSpecError):
    """A crew file (or CrewAI project file) is wrong; ``issues`` says where and how to fix it."""

    def __init__(self, issues: Sequence[SpecIssue]) -> None:
        self.issues = tuple(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


def field_name(path: Iterable[PathPart]) -> str:
    """``("tasks", "write", "context", 1)`` → ``tasks.write.context[1]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _PLAIN.fullmatch(part):
            out += f'["{part}"]'
        else:
            out += f".{part}" if out else part
    return out


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to ``word``, if one is close enough to be a likely typo."""
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def suggest(word: str, candidates: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` or, with no close candidate, the list of valid ones (or nothing)."""
    options = list(candidates)
    close = did_you_mean(word, options)
    if close is not None:
        return f"; did you mean '{close}'?"
    if options:
        return " (expected one of: " + ", ".join(options) + ")"
    return ""


def describe(value: object) -> str:
    """How a value looks to a person writing YAML."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text {value!r}" if len(value) <= 40 else "a text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def problems_from_validation(exc: ValidationError, data: object, model: type[BaseModel]) -> list[Problem]:
    """Pydantic's errors as problems at paths that exist in ``data``, with messages a person can act on."""
    problems, guessed = [], set()
    for error in exc.errors(include_url=False):
        path, at_key = _data_path(error["loc"], data)
        if error["type"] == "extra_forbidden":
            at_key = True
            close = did_you_mean(str(path[-1]), _fields_at(model, path[:-1]))
            guessed.add((*path[:-1], close))
        problems.append((error["type"], Problem(path, _message(error, path, model), at_key)))
    # "unknown field 'gaol'; did you mean 'goal'?" already says that 'goal' is missing
    return [p for kind, p in problems if not (kind == "missing" and p.path in guessed)]


def _data_path(loc: tuple[int | str, ...], data: object) -> tuple[DocPath, bool]:
    """Drop pydantic's union and validator tags from ``loc``, keeping the parts written in the data."""
    path: list[PathPart] = []
    node = data
    for i, part in enumerate(loc):
        if part == "[key]":
            return tuple(path), True
        found, child = _child(node, part)
        if found:
            node = child
        elif i != len(loc) - 1:
            continue
        path.append(part)
    return tuple(path), False


def _child(node: object, part: PathPart) -> tuple[bool, object]:
    if isinstance(node, dict) and part in node:
        return True, node[part]
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return True, node[part]
    return False, None


FORBIDDEN_ROLE_FIELDS = ("url", "nats", "headers_from", "command")
"""Role fields a crew file may not carry (an address, a command, a variable to read): the operator declares them."""


def _forbidden(path: DocPath) -> str | None:
    """The message for a role field that only the operator may set (None: not one of them)."""
    if len(path) != 3 or path[0] != "roles" or path[2] not in FORBIDDEN_ROLE_FIELDS:
        return None
    return (
        f"a crew file cannot set '{path[2]}': an outside agent's address and credentials are declared by "
        "the operator (CREWS_A2A_AGENTS on the role workers, or the chart's a2aAgents), and the role "
        "names it with `engine: a2a` and `agent: <name>`"
    )


def _message(error: ErrorDetails, path: DocPath, model: type[BaseModel]) -> str:
    kind, ctx, value = error["type"], error.get("ctx", {}), error["input"]
    if kind == "missing":
        return f"missing required field '{path[-1]}'"
    if kind == "extra_forbidden" and (forbidden := _forbidden(path)) is not None:
        return forbidden
    if kind == "extra_forbidden":
        allowed = _fields_at(model, path[:-1])
        return f"unknown field '{path[-1]}'" + suggest(str(path[-1]), allowed)
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        close = did_you_mean(str(value), options)
        return f"{value!r} is not one of {', '.join(options)}" + (
            f"; did you mean '{close}'?" if close else ""
        )
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind == "string_type" and isinstance(value, bool | int | float):
        return f"expected text, got {describe(value)} (put it in quotes to make it text)"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {describe(value)}"
    if kind in _BOUNDS:
        return f"must be {_BOUNDS[kind]} {next(iter(ctx.values()))}, got {describe(value)}"
    if kind == "too_short":
        return "must not be empty"
    return str(error["msg"])


_BOUNDS = {
    "greater_than": "more than",
    "greater_than_equal": "at least",
    "less_than": "less than",
    "less_than_equal": "at most",
}
_EXPECTED = {
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
}


def _fields_at(model: type[BaseModel], path: DocPath) -> list[str]:
    """The field names of the model that validates the mapping at ``path`` (for did-you-mean)."""
    hint: Any = model
    for part in path:
        hint = _unwrap(hint)
        if isinstance(hint, type) and issubclass(hint, BaseModel):
            field = hint.model_fields.get(str(part))
            if field is None:
                return []
            hint = field.annotation
        elif get_origin(hint) in (dict, list):
            hint = get_args(hint)[-1]
        else:
            return []
    hint = _unwrap(hint)
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return list(hint.model_fields)
    return []


def _unwrap(hint: Any) -> Any:
    """``Annotated[X, ...]`` and ``X | None`` → ``X``."""
    while True:
        if get_origin(hint) is Annotated:
            hint = get_args(hint)[0]
        elif get_origin(hint) in (Union, UnionType):
            rest = [arg for arg in get_args(hint) if arg is not type(None)]
            if len(rest) != 1:
                return hint
            hint = rest[0]
        else:
            return hint
