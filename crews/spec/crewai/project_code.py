"""The CrewAI project's own code that crew.py names, as references a crew file may carry (never the code).

crew.py gives agents tools (``MyCustomTool()``, an ``@tool`` function,
``SerperDevTool()``) and tasks guardrail functions and output models. Each is
written into the crew file by import path, read from crew.py's imports:

- from the project's package (``from .tools.custom_tool import MyCustomTool``,
  ``from my_crew.tools...``, a module beside crew.py, or crew.py itself):
  ``project:<package>.<module>:<name>``, resolved at run time only when the
  operator declared that package's directory (``CREWS_PROJECT_PATHS``,
  ``crews up --project``);
- from ``crewai_tools``: ``crewai_tools:<Class>``.

What CrewAI runs these with is CrewAI's own loop, so every role that uses
them runs on ``engine: crewai`` (and is said so, by name). What cannot be
named by path (a tool from another package, a lambda) is warned about or
refused by name.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from crews.errors import CrewSpecError
from crews.spec.crewai._ast_reader import CrewPy, PyName, TaskDef
from crews.spec.problems import Problem
from crews.spec.rules import CREWAI_TASK_KEYS


class ProjectPackage:
    """The package crew.py lives in: its name (the directory's) and directory."""

    def __init__(self, crew_py: CrewPy) -> None:
        self.file = crew_py.file
        self.directory = Path(crew_py.file).resolve().parent
        self.name = self.directory.name

    def reference(self, found: PyName) -> str | None:
        """``project:<package>.<module>:<name>`` or ``crewai_tools:<Class>``; None: not the project's."""
        module = found.module
        if module is not None and module.partition(".")[0] == "crewai_tools":
            return f"crewai_tools:{found.attribute}"
        if module == "?":
            return None
        if module is None:
            module = f"{self.name}.crew"
        elif module.startswith(".."):
            return None  # above the package: not the project's code
        elif module.startswith("."):
            module = f"{self.name}{module}" if module != "." else self.name
        elif module.partition(".")[0] == self.name:
            pass
        elif self._beside(module.partition(".")[0]):
            module = f"{self.name}.{module}"
        else:
            return None
        self._check_name()
        return f"project:{module}:{found.attribute}"

    def _beside(self, top: str) -> bool:
        return (self.directory / top).is_dir() or (self.directory / f"{top}.py").is_file()

    def _check_name(self) -> None:
        if not self.name.isidentifier():
            raise CrewSpecError(
                f"{self.file}: the project's code is named by its package, but the directory "
                f"'{self.name}' is not a Python package name: rename it (letters, digits, '_')"
            )


def snake(name: str) -> str:
    """``MyCustomTool`` → ``my_custom_tool`` (a crews tool name)."""
    spaced = re.sub(r"(?<=[a-z0-9])([A-Z])|(?<=[A-Z])([A-Z][a-z])", r"_\1\2", name)
    return re.sub(r"[^A-Za-z0-9_-]+", "_", spaced).strip("_").lower()[:64] or "tool"


def role_tools(
    package: ProjectPackage, key: str, names: tuple[str, ...], objects: tuple[PyName | None, ...]
) -> tuple[list[Any], list[Problem]]:
    """An agent's tools as crew-file entries; a warning for each one crews cannot name by path."""
    entries: list[Any] = []
    warnings: list[Problem] = []
    for index, name in enumerate(names):
        found = objects[index] if index < len(objects) else None
        ref = package.reference(found) if found is not None else None
        if found is None or ref is None:
            message = (
                f"tool '{name}' is not the project's code nor a crewai_tools class: the role names it as "
                "a crews tool, which the operator must provide"
            )
            warnings.append(Problem((key, "tools"), message, at_key=True))
            entries.append(name)
            continue
        entries.append({"name": snake(found.attribute), "crewai": ref})
        if found.arguments:
            message = (
                f"tool '{found.written}' is made with arguments in crew.py: crews makes it with its defaults "
                f"({ref}); give the project a tool class whose defaults are right"
            )
            warnings.append(Problem((key, "tools"), message, at_key=True))
    return entries, warnings


def task_objects(package: ProjectPackage, task: TaskDef) -> dict[str, Any]:
    """A ``Task(...)``'s guardrail functions and output models as crew-file keys."""
    out: dict[str, Any] = {}
    guardrails: list[Any] = []
    for key in ("guardrail", "guardrails"):
        for item in task.objects.get(key, []):
            guardrails.append(
                item if isinstance(item, str) else {"function": _required(package, task, key, item)}
            )
    if guardrails:
        out["guardrails"] = guardrails
    for key in ("output_pydantic", "output_json"):
        for item in task.objects.get(key, []):
            if isinstance(item, str):
                raise _refused(package, task, key, f"'{item}' is a text, not a pydantic model class")
            out[key] = _required(package, task, key, item)
    return out


def _required(package: ProjectPackage, task: TaskDef, key: str, found: PyName) -> str:
    ref = package.reference(found)
    if ref is None or ref.startswith("crewai_tools:"):
        raise _refused(
            package,
            task,
            key,
            f"'{found.written}' is not the project's code: crews runs only the project's own functions and "
            "models, named by import path; move it into the project's package",
        )
    return ref


def _refused(package: ProjectPackage, task: TaskDef, key: str, why: str) -> CrewSpecError:
    from crews.spec.problems import CrewFileError, SpecIssue

    issue = SpecIssue(package.file, task.line, task.column, f"{task.config_key}.{key}", f"'{key}': {why}")
    return CrewFileError([issue])


def crewai_roles(roles: dict[str, Any], steps: dict[str, Any]) -> dict[str, list[str]]:
    """Roles that need CrewAI's loop, and why: CrewAI tools, or a task using what only CrewAI honours."""
    need: dict[str, list[str]] = {}
    for key, role in roles.items():
        tools = role.get("tools") if isinstance(role, dict) else None
        if any(isinstance(t, dict) and "crewai" in t for t in tools or []):
            need.setdefault(key, []).append("its CrewAI tools")
        if isinstance(role, dict) and role.get("max_rpm"):
            need.setdefault(key, []).append("max_rpm")
    for task_key, task in steps.items():
        if not isinstance(task, dict) or not isinstance(task.get("agent"), str):
            continue
        used = [k for k in ("guardrail", *CREWAI_TASK_KEYS) if task.get(k) not in (None, False, [])]
        if used and task["agent"] in roles:
            need.setdefault(task["agent"], []).append(f"task '{task_key}' ({', '.join(used)})")
    return need
