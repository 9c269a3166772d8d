"""Bring CrewAI projects as they are: ``agents.yaml`` + ``tasks.yaml``, and ``crew.py`` read with ``ast``.

Every key CrewAI documents for agents and tasks is accepted; those crews has
no equivalent for yet are left out with a warning (returned, not raised).
In CrewAI the task → agent mapping often lives in Python: it is read from
``crew.py`` when there is one, can be given as ``mapping`` (``--map``), and
when it is missing the error says exactly what to add.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crews.errors import CrewSpecError
from crews.spec.crewai._ast_reader import CrewPy, TaskDef, parse_crew_py
from crews.spec.crewai.keys import (
    AGENT_IGNORED,
    AGENT_KEYS,
    TASK_IGNORED,
    TASK_KEYS,
    at_least_one_iteration,
    crewai_required,
    keep,
    max_tokens_into_llm,
    no_time_limit,
)
from crews.spec.crewai.project_code import ProjectPackage, crewai_roles, role_tools, task_objects
from crews.spec.load import crew_from_data
from crews.spec.models import CrewSpec, RoleSpec, TaskSpec, placeholders
from crews.spec.positions import Located, Positions, load_yaml, require_mapping
from crews.spec.problems import CrewFileError, Problem, SpecIssue, suggest

__all__ = [
    "Imported",
    "ProjectFiles",
    "find_project",
    "import_project",
    "load_crewai_pair",
    "load_crewai_texts",
    "project_package_dir",
]


@dataclass(frozen=True)
class Imported:
    """A crew read from CrewAI files, and what was left out on the way."""

    spec: CrewSpec
    warnings: tuple[SpecIssue, ...]


@dataclass(frozen=True)
class ProjectFiles:
    agents: Path
    tasks: Path
    crew_py: Path | None


def find_project(directory: str | os.PathLike[str]) -> ProjectFiles:
    """Where a CrewAI project keeps its files: ``config/`` or the directory itself, or ``src/<pkg>/``."""
    root = Path(directory)
    bases = [root, *sorted(p for p in (root / "src").glob("*") if p.is_dir())]
    for base in bases:
        for config in (base / "config", base):
            if (config / "agents.yaml").is_file() and (config / "tasks.yaml").is_file():
                crew_py = base / "crew.py"
                return ProjectFiles(
                    config / "agents.yaml", config / "tasks.yaml", crew_py if crew_py.is_file() else None
                )
    if not root.is_dir():
        raise CrewSpecError(f"{root}: no such directory")
    raise CrewSpecError(
        f"{root}: no CrewAI project here: expected config/agents.yaml and config/tasks.yaml "
        "(or agents.yaml and tasks.yaml, or src/<package>/config/...)"
    )


def project_package_dir(directory: str | os.PathLike[str]) -> Path:
    """The directory of a CrewAI project's package (where crew.py is): what its code references name."""
    files = find_project(directory)
    if files.crew_py is not None:
        return files.crew_py.resolve().parent
    config = files.agents.resolve().parent
    return config.parent if config.name == "config" else config


def import_project(
    directory: str | os.PathLike[str], *, name: str | None = None, mapping: Mapping[str, str] | None = None
) -> Imported:
    """Read a CrewAI project directory: its two YAML files and, if present, ``crew.py``."""
    files = find_project(directory)
    crew_py = parse_crew_py(_read(files.crew_py), str(files.crew_py)) if files.crew_py else None
    base = Path(directory).resolve().name
    return load_crewai_pair(files.agents, files.tasks, name=name or base, mapping=mapping, crew_py=crew_py)


def load_crewai_pair(
    agents: str | os.PathLike[str],
    tasks: str | os.PathLike[str],
    *,
    name: str | None = None,
    mapping: Mapping[str, str] | None = None,
    crew_py: CrewPy | None = None,
) -> Imported:
    """Read a CrewAI ``agents.yaml`` and ``tasks.yaml`` as one crew."""
    agents_path, tasks_path = Path(agents), Path(tasks)
    folder = agents_path.resolve().parent
    crew_name = name or (folder.parent if folder.name == "config" else folder).name
    return load_crewai_texts(
        _read(agents_path),
        _read(tasks_path),
        agents_file=str(agents_path),
        tasks_file=str(tasks_path),
        name=crew_name,
        mapping=mapping,
        crew_py=crew_py,
    )


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CrewSpecError(f"{path}: cannot be read: {exc}") from None


def load_crewai_texts(
    agents_text: str,
    tasks_text: str,
    *,
    agents_file: str = "agents.yaml",
    tasks_file: str = "tasks.yaml",
    name: str = "crew",
    mapping: Mapping[str, str] | None = None,
    crew_py: CrewPy | None = None,
) -> Imported:
    """The texts of a CrewAI pair as one crew; ``mapping`` (task → agent) wins over crew.py and YAML."""
    agents = load_yaml(agents_text, agents_file)
    tasks = load_yaml(tasks_text, tasks_file)
    roles, steps, warnings = _sections(agents, tasks)
    process, manager = "sequential", dict[str, str]()
    if crew_py is not None:
        steps, process, manager = _apply_crew_py(crew_py, steps, roles, (agents, tasks), warnings)
    for task, agent in _checked_mapping(mapping or {}, steps, roles).items():
        steps[task]["agent"] = agent
    warnings = _on_crewai(roles, steps, agents, tasks, warnings)
    if process != "hierarchical":
        _require_agents(steps, roles, tasks, crew_py)
    inputs = {n: {"description": f"{{{n}}} in the CrewAI files"} for n in _placeholders(roles, steps)}
    data = {
        "name": _crew_name(name),
        "process": process,
        **manager,
        "inputs": inputs,
        "roles": roles,
        "tasks": steps,
    }
    try:
        spec = crew_from_data(data, _positions(agents, tasks, crew_py))
    except CrewFileError as exc:
        raise CrewFileError([_relative(i, agents_file, tasks_file) for i in exc.issues]) from None
    return Imported(spec, tuple(warnings))


@dataclass(frozen=True)
class _Section:
    what: str
    expected: str
    keys: set[str]
    ignored: set[str]


_AGENTS = _Section(
    "CrewAI agents.yaml", "agents, each with role, goal and backstory", AGENT_KEYS, AGENT_IGNORED
)
_TASKS = _Section(
    "CrewAI tasks.yaml", "tasks, each with description and expected_output", TASK_KEYS, TASK_IGNORED
)


def _sections(agents: Located, tasks: Located) -> tuple[dict[str, Any], dict[str, Any], list[SpecIssue]]:
    """Both files' entries with the keys crews knows; every unknown key in both files reported at once."""
    problems: list[SpecIssue] = []
    warnings: list[SpecIssue] = []
    out: list[dict[str, Any]] = []
    for located, section, native in ((agents, _AGENTS, RoleSpec), (tasks, _TASKS, TaskSpec)):
        entries = require_mapping(located, section.what, section.expected)
        known = section.keys | set(native.model_fields)
        kept = {}
        for key, value in entries.items():
            kept[key], wrong, left_out = keep(value, known, section.ignored, (key,))
            problems += located.positions.locate(wrong)
            warnings += located.positions.locate(left_out)
        out.append(kept)
    if problems:
        raise CrewFileError(problems)
    roles = {k: max_tokens_into_llm(v) for k, v in out[0].items()}
    problems += agents.positions.locate(crewai_required(roles))
    if problems:
        raise CrewFileError(problems)
    warnings += agents.positions.locate(at_least_one_iteration(roles) + no_time_limit(roles))
    return roles, out[1], warnings


def _on_crewai(
    roles: dict[str, Any], steps: dict[str, Any], agents: Located, tasks: Located, warnings: list[SpecIssue]
) -> list[SpecIssue]:
    """Roles using what only CrewAI's loop honours run on engine: crewai (said by name)."""
    need = crewai_roles(roles, steps)
    honoured = {f"{k}.max_rpm" for k in need}
    honoured |= {f"{t}.{key}" for t, v in steps.items() if isinstance(v, dict) and v.get("agent") in need
                 for key in ("guardrail", "human_input")}  # fmt: skip
    kept = [w for w in warnings if w.field not in honoured]
    problems = []
    for key, why in need.items():
        if isinstance(roles[key], dict) and roles[key].get("engine") in (None, "crewai"):
            roles[key]["engine"] = "crewai"
            message = f"runs on engine: crewai (CrewAI's own loop), for {', '.join(why)}"
            problems.append(Problem((key,), message, at_key=True))
    for key, task in steps.items():
        if isinstance(task, dict) and task.get("human_input") and task.get("agent") is None:
            del task["human_input"]
            message = (
                "'human_input' is left out: crews asks a person only in a task of an engine: crewai role, and "
                "this task's agent is the manager's choice (give it an agent to keep it)"
            )
            kept += tasks.positions.locate([Problem((key, "human_input"), message, at_key=True)])
    return kept + agents.positions.locate(problems)


def _apply_crew_py(
    crew_py: CrewPy,
    steps: dict[str, Any],
    roles: dict[str, Any],
    files: tuple[Located, Located],
    warnings: list[SpecIssue],
) -> tuple[dict[str, Any], str, dict[str, str]]:
    """Tasks in crew.py's order with its agents, context, tools, guardrails, output models; process, manager."""
    agents, tasks = files
    package = ProjectPackage(crew_py)
    for agent in crew_py.agents.values():
        role = roles.get(agent.config_key)
        if isinstance(role, dict):
            role.update({k: v for k, v in agent.settings.items() if k in AGENT_KEYS})
            if agent.tools:
                role["tools"], left = role_tools(package, agent.config_key, agent.tools, agent.tool_objects)
                warnings += agents.positions.locate(left)
    ordered = {task.config_key: _crew_py_task(crew_py, package, task, steps) for task in crew_py.tasks}
    if crew_py.tasks:
        for left_out in (k for k in steps if k not in ordered):
            message = f"task '{left_out}' is not used by {Path(crew_py.file).name}: left out, as CrewAI does"
            warnings += tasks.positions.locate([Problem((left_out,), message, at_key=True)])
    manager: dict[str, str] = {}
    if crew_py.manager_agent is not None:
        manager["manager"] = crew_py.agent_key(crew_py.manager_agent)
    elif crew_py.manager_llm is not None:
        manager["manager_llm"] = crew_py.manager_llm
    return (ordered if crew_py.tasks else steps), crew_py.process or "sequential", manager


def _crew_py_task(crew_py: CrewPy, package: ProjectPackage, task: TaskDef, steps: dict[str, Any]) -> Any:
    """A tasks.yaml entry with what its ``Task(...)`` in crew.py adds: agent, context, settings, code refs."""
    if task.config_key not in steps:
        message = (
            f"task '{task.method}' reads tasks_config['{task.config_key}'], which tasks.yaml does not define"
        )
        issue = SpecIssue(crew_py.file, task.line, task.column, "", message + suggest(task.config_key, steps))
        raise CrewFileError([issue])
    entry = steps[task.config_key]
    if not isinstance(entry, dict):
        return entry  # validation says what is wrong with it
    entry = {**entry, **{k: v for k, v in task.settings.items() if k in TASK_KEYS}}
    if "guardrail" in task.objects:
        entry.pop("guardrail", None)  # crew.py's guardrail wins over the YAML's; a function is a reference
    entry.update(task_objects(package, task))
    if task.agent_method is not None:
        entry["agent"] = crew_py.agent_key(task.agent_method)
    if task.context_methods is not None:
        entry["context"] = [_task_key(crew_py, m) for m in task.context_methods]
    return entry


def _task_key(crew_py: CrewPy, method: str) -> str:
    return next((t.config_key for t in crew_py.tasks if t.method == method), method)


def _checked_mapping(
    mapping: Mapping[str, str], steps: dict[str, Any], roles: dict[str, Any]
) -> dict[str, str]:
    for task, agent in mapping.items():
        if task not in steps:
            raise CrewSpecError(
                f"cannot map task '{task}' to '{agent}': unknown task '{task}'" + suggest(task, steps)
            )
        if agent not in roles:
            raise CrewSpecError(
                f"cannot map task '{task}' to '{agent}': unknown agent '{agent}'" + suggest(agent, roles)
            )
    return dict(mapping)


def _require_agents(
    steps: dict[str, Any], roles: dict[str, Any], tasks: Located, crew_py: CrewPy | None
) -> None:
    """Every task needs an agent: say exactly where to write it."""
    problems = []
    for key, task in steps.items():
        if isinstance(task, dict) and task.get("agent") is None:
            fix = f"add `agent: <one of {', '.join(roles)}>` under it in tasks.yaml"
            if crew_py is not None:
                fix += f", or `agent=self.<agent>()` to its Task in {Path(crew_py.file).name}"
            message = f"task has no agent: {fix}, or pass --map {key}=<agent>"
            problems.append(Problem((key, "agent"), message))
    if problems:
        raise CrewFileError(tasks.positions.locate(problems))


def _placeholders(roles: dict[str, Any], steps: dict[str, Any]) -> list[str]:
    """CrewAI projects do not declare inputs: every ``{name}`` in their texts is one."""
    texts = [v.get(f) for v in roles.values() if isinstance(v, dict) for f in ("role", "goal", "backstory")]
    texts += [
        v.get(f) for v in steps.values() if isinstance(v, dict) for f in ("description", "expected_output")
    ]
    texts += [v.get("output_file") for v in steps.values() if isinstance(v, dict)]
    found = [name for text in texts if isinstance(text, str) for name in placeholders(text)]
    return list(dict.fromkeys(found))


def _crew_name(name: str) -> str:
    """A directory name as a crew name (one NATS token)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "crew"


def _positions(agents: Located, tasks: Located, crew_py: CrewPy | None) -> Positions:
    positions = Positions(agents.positions.origin)
    positions.update(agents.positions.moved((), ("roles",)))
    positions.update(tasks.positions.moved((), ("tasks",)))
    if crew_py is not None:
        from crews.spec.positions import Mark

        for path in (("process",), ("manager",), ("manager_llm",)):
            positions.values[path] = Mark(crew_py.file, crew_py.crew_line, 1)
    return positions


def _relative(issue: SpecIssue, agents_file: str, tasks_file: str) -> SpecIssue:
    """``roles.researcher.goal`` is ``researcher.goal`` in agents.yaml."""
    prefix = {agents_file: "roles.", tasks_file: "tasks."}.get(issue.file)
    if prefix and issue.field.startswith(prefix):
        return SpecIssue(issue.file, issue.line, issue.column, issue.field[len(prefix) :], issue.message)
    return issue
