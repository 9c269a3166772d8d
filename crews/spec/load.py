"""Read crew files: ``load_crew(path)`` / ``load_crew_text(text, filename)`` -> ``CrewSpec``.

Both raise ``CrewFileError`` naming file, line, column and field for every
mistake; ``crew_json_schema()`` publishes the schema for editors.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from crews.spec.limits import SpecLimits, limit_problems
from crews.spec.models import CrewSpec
from crews.spec.positions import Positions, load_yaml, require_mapping
from crews.spec.problems import CrewFileError, CrewSpecProblems, Problem, SpecIssue, problems_from_validation


def crew_from_data(data: object, positions: Positions, limits: SpecLimits | None = None) -> CrewSpec:
    """Validate a parsed crew file (within ``limits``); every problem is reported at its place in the file(s)."""
    hint = _crewai_hint(data)
    if hint is not None:
        raise CrewFileError(positions.locate([hint]))
    try:
        spec = CrewSpec.model_validate(data)
    except CrewSpecProblems as exc:
        raise CrewFileError(positions.locate(exc.problems)) from None
    except ValidationError as exc:
        raise CrewFileError(positions.locate(problems_from_validation(exc, data, CrewSpec))) from None
    over = limit_problems(spec, limits) if limits is not None else []
    if over:
        raise CrewFileError(positions.locate(over))
    return spec


def _crewai_hint(data: object) -> Problem | None:
    """A CrewAI agents.yaml or tasks.yaml given where a crew file was expected."""
    if not isinstance(data, dict) or {"roles", "tasks", "name"} & data.keys():
        return None
    values = [v for v in data.values() if isinstance(v, dict)]
    if values and len(values) == len(data):
        kind = "agents.yaml" if all("role" in v for v in values) else "tasks.yaml"
        if kind == "agents.yaml" or all("description" in v for v in values):
            message = f"this looks like a CrewAI {kind}, not a crew file: read the project with `crews import <dir>`"
            return Problem((), message)
    return None


def load_crew_text(text: str, filename: str = "<crew>", limits: SpecLimits | None = None) -> CrewSpec:
    """Read a crew file's text (within ``limits``); raises :class:`CrewFileError` naming file, line and field."""
    located = load_yaml(text, filename)
    data = require_mapping(located, "crew file", "name, roles and tasks")
    return crew_from_data(data, located.positions, limits)


def problems_in_text(text: str, filename: str, problems: list[Problem]) -> CrewFileError:
    """``problems`` found after a crew file loaded (its tool names, say), placed at their lines."""
    return CrewFileError(load_yaml(text, filename).positions.locate(problems))


def load_crew(path: str | os.PathLike[str]) -> CrewSpec:
    """Read a crew file; raises :class:`CrewFileError` (or ``CrewSpecError`` if it cannot be read)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _unreadable(file, "does not exist") from None
    except IsADirectoryError:
        raise _unreadable(
            file, f"is a directory; to read a CrewAI project use `crews import {file}`"
        ) from None
    except UnicodeDecodeError:
        raise _unreadable(file, "is not UTF-8 text") from None
    except OSError as exc:
        raise _unreadable(file, f"cannot be read: {exc.strerror}") from None
    return load_crew_text(text, str(file))


def _unreadable(file: Path, why: str) -> CrewFileError:
    return CrewFileError([SpecIssue(str(file), 1, 1, "", f"the file {why}")])


def crew_json_schema() -> dict[str, Any]:
    """JSON schema of the crew file, for editors (``# yaml-language-server: $schema=...``)."""
    schema = CrewSpec.model_json_schema(mode="validation")
    _close_pattern_properties(schema)
    return {**schema, "$schema": "https://json-schema.org/draft/2020-12/schema", "title": "crews crew file"}


def _close_pattern_properties(node: Any) -> None:
    """Keys that match no pattern (a bad role or task name) are errors for editors too."""
    if isinstance(node, dict):
        if "patternProperties" in node:
            node.setdefault("additionalProperties", False)
        for value in node.values():
            _close_pattern_properties(value)
    elif isinstance(node, list):
        for value in node:
            _close_pattern_properties(value)
