"""A crew file's references to a CrewAI project's code, checked without running any of it.

``project:<package>.<module>:<name>`` is written in a role's tools (``crewai:``), a task's
function guardrails and its ``output_pydantic`` / ``output_json``. The crewai workers import
it only from the package directories the operator declared (``CREWS_PROJECT_PATHS``;
``roles.engines.crewai_project``). Two checks, for the processes that know the declaration:

- ``check_declared(spec, packages)``: each reference's package is a declared project (the API,
  when ``CREWS_PROJECT_PATHS`` is set for it: package names are the directories' names; the
  directories themselves are in the workers' image, not the API's);
- ``check_resolves(spec, directories)``: besides, the module's file is in the declared
  directory and defines the name at its top level (read with ``ast``: nothing is imported or
  run), for ``crews validate --project DIR``.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from crews.spec.models import CrewSpec, FunctionGuardrail
from crews.spec.problems import DocPath, Problem

PROJECT = "project:"
DECLARE = (
    "the operator declares a CrewAI project's package directory for the crewai workers: CREWS_PROJECT_PATHS "
    "(the chart: the role's projectPaths and image, `python -m images.build --project DIR`; locally: "
    "`crews up --project DIR`)"
)


def split_paths(value: Any) -> Any:
    """``CREWS_PROJECT_PATHS`` as a list: directories separated by ``os.pathsep``."""
    return [part for part in value.split(os.pathsep) if part.strip()] if isinstance(value, str) else value


@dataclass(frozen=True)
class ProjectRef:
    """One ``project:`` reference and where the crew file writes it."""

    path: DocPath
    ref: str

    @property
    def module(self) -> str:
        return self.ref.removeprefix(PROJECT).rpartition(":")[0]

    @property
    def name(self) -> str:
        return self.ref.rpartition(":")[2]

    @property
    def package(self) -> str:
        return self.module.partition(".")[0]


def project_refs(spec: CrewSpec) -> Iterator[ProjectRef]:
    """Every ``project:`` reference of the crew, in file order (roles, then tasks)."""
    for key, role in spec.roles.items():
        for index, tool in enumerate(role.tools):
            if tool.crewai is not None and tool.crewai.startswith(PROJECT):
                yield ProjectRef(("roles", key, "tools", index, "crewai"), tool.crewai)
    for key, task in spec.tasks.items():
        for index, guardrail in enumerate(task.guardrails):
            if isinstance(guardrail, FunctionGuardrail):
                yield ProjectRef(("tasks", key, "guardrails", index, "function"), guardrail.function)
        for field in ("output_pydantic", "output_json"):
            ref = getattr(task, field)
            if ref is not None:
                yield ProjectRef(("tasks", key, field), ref)


def project_packages(spec: CrewSpec) -> list[str]:
    """The packages the crew's references name, sorted."""
    return sorted({ref.package for ref in project_refs(spec)})


def role_packages(spec: CrewSpec) -> dict[str, list[str]]:
    """The packages each role's steps import: its tools', and its tasks' (which name their agent: rules.py)."""
    found: dict[str, set[str]] = {}
    for ref in project_refs(spec):
        kind, key = ref.path[0], str(ref.path[1])
        role = key if kind == "roles" else spec.tasks[key].agent
        if role is not None:
            found.setdefault(role, set()).add(ref.package)
    return {role: sorted(packages) for role, packages in found.items()}


def check_declared(spec: CrewSpec, packages: Iterable[str]) -> list[Problem]:
    """A problem for each reference whose package is not one of ``packages``."""
    declared = frozenset(packages)
    return [_undeclared(ref, declared) for ref in project_refs(spec) if ref.package not in declared]


def check_resolves(spec: CrewSpec, directories: Iterable[Path]) -> list[Problem]:
    """As ``check_declared``, and each module is a file of its package that defines the name."""
    packages = {directory.resolve().name: directory.resolve() for directory in directories}
    problems = []
    for ref in project_refs(spec):
        directory = packages.get(ref.package)
        message = (
            _undeclared(ref, frozenset(packages)).message if directory is None else _missing(ref, directory)
        )
        if message is not None:
            problems.append(Problem(ref.path, message))
    return problems


def _undeclared(ref: ProjectRef, declared: frozenset[str]) -> Problem:
    names = ", ".join(sorted(declared)) or "none"
    return Problem(
        ref.path,
        f"'{ref.ref}' is in package '{ref.package}', which is not a declared CrewAI project "
        f"(declared: {names}): {DECLARE}",
    )


def _missing(ref: ProjectRef, directory: Path) -> str | None:
    """Why ``ref`` does not resolve in the package ``directory``; None when it does."""
    parts = ref.module.split(".")[1:]
    candidates = [directory.joinpath(*parts).with_suffix(".py")] if parts else []
    candidates.append(directory.joinpath(*parts, "__init__.py"))
    found = next((path for path in candidates if path.is_file()), None)
    if found is None:
        where = " or ".join(str(PurePath(path).relative_to(directory.parent)) for path in candidates)
        return f"'{ref.ref}': module '{ref.module}' is not in the project ({where} does not exist)"
    try:
        names = top_level_names(ast.parse(found.read_bytes(), str(found)))
    except (SyntaxError, ValueError) as exc:
        return f"'{ref.ref}': {found} cannot be read as Python ({exc})"
    if names is not None and ref.name not in names:
        return f"'{ref.ref}': {found} defines no '{ref.name}' at its top level"
    return None


def top_level_names(module: ast.Module) -> frozenset[str] | None:
    """The names a module binds at its top level; None if it cannot be told (``import *``, ``__getattr__``)."""
    names: set[str] = set()
    for node in _top_level(module.body):
        match node:
            case ast.FunctionDef(name=name) | ast.AsyncFunctionDef(name=name) | ast.ClassDef(name=name):
                names.add(name)
            case ast.Import(names=aliases) | ast.ImportFrom(names=aliases):
                for alias in aliases:
                    if alias.name == "*":
                        return None
                    names.add(alias.asname or alias.name.partition(".")[0])
            case ast.Assign(targets=targets):
                names.update(_bound(targets))
            case ast.AnnAssign(target=target) | ast.AugAssign(target=target):
                names.update(_bound([target]))
    return None if "__getattr__" in names else frozenset(names)


def _top_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements run at import: the body, and the bodies of its ``if`` / ``try`` / ``with`` blocks."""
    for node in body:
        yield node
        if isinstance(node, ast.If | ast.Try | ast.With):
            handlers = [handler.body for handler in getattr(node, "handlers", [])]
            for block in (node.body, getattr(node, "orelse", []), getattr(node, "finalbody", []), *handlers):
                yield from _top_level(block)


def _bound(targets: list[ast.expr]) -> Iterator[str]:
    for target in targets:
        for node in ast.walk(target):
            if isinstance(node, ast.Name):
                yield node.id
