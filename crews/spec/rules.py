"""Rules of a crew file that span fields: references, cycles, placeholders, managers, engines.

Each check returns :class:`Problem` s at the path of the mistake; ``CrewSpec``
raises them all at once, and the loader places them in the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from crews.spec.problems import DocPath, Problem, describe, did_you_mean, suggest

if TYPE_CHECKING:
    from crews.spec.models import CrewSpec, RoleSpec, TaskSpec

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_\-]*)\}")
"""A ``{name}`` in a role or task text, as CrewAI writes it (JSON braces are left alone)."""

TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
}


def placeholders(text: str) -> list[str]:
    """The ``{name}`` placeholders in ``text``, each once, in order."""
    return list(dict.fromkeys(PLACEHOLDER.findall(text)))


def matches_type(value: object, kind: str) -> bool:
    """Whether a JSON value fits an input's declared type."""
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, dict if kind == "object" else list)


def check(spec: CrewSpec) -> list[Problem]:
    """Every cross-field problem of ``spec``, in file order of the sections."""
    problems = [*_inputs(spec), *_manager(spec)]
    for key, role in spec.roles.items():
        problems += _role(key, role)
    problems += _tasks(spec)
    if not any(p.path[:1] == ("tasks",) and len(p.path) > 2 and p.path[2] == "context" for p in problems):
        problems += _cycles(spec)
    problems += _placeholders(spec)
    problems += _budgets(spec)
    return problems


def _inputs(spec: CrewSpec) -> Iterator[Problem]:
    for name, spec_input in spec.inputs.items():
        default = spec_input.default
        if default is not None and not matches_type(default, spec_input.type):
            message = f"the default must be {TYPE_WORDS[spec_input.type]} (type: {spec_input.type}), got {describe(default)}"
            yield Problem(("inputs", name, "default"), message)


def _manager(spec: CrewSpec) -> Iterator[Problem]:
    if spec.process != "hierarchical":
        for key in ("manager", "manager_llm"):
            if getattr(spec, key) is not None:
                yield Problem((key,), f"{key} is only used with process: hierarchical", at_key=True)
        return
    if spec.manager is None and spec.manager_llm is None:
        yield Problem(
            ("process",),
            "a hierarchical crew needs a manager: set `manager: <role>` or `manager_llm: <model>`",
        )
    elif spec.manager is not None and spec.manager_llm is not None:
        yield Problem(("manager_llm",), "set either manager or manager_llm, not both", at_key=True)
    elif spec.manager is not None and spec.manager not in spec.roles:
        yield Problem(("manager",), f"unknown role '{spec.manager}'" + suggest(spec.manager, spec.roles))
    elif spec.manager is None and "manager" in spec.roles:
        message = (
            "the role key 'manager' is taken by the manager that manager_llm creates: "
            "rename this role, or set `manager: manager` instead of manager_llm"
        )
        yield Problem(("roles", "manager"), message, at_key=True)


def _role(key: str, role: RoleSpec) -> Iterator[Problem]:
    here: DocPath = ("roles", key)
    if role.engine != "a2a" and role.agent is not None:
        yield Problem((*here, "agent"), "agent is only used with engine: a2a", at_key=True)
    elif role.engine == "a2a" and role.agent is None:
        message = (
            "engine a2a needs `agent: <name>`, the name of an outside agent the operator declared "
            "(CREWS_A2A_AGENTS on the role workers)"
        )
        yield Problem((*here, "engine"), message)
    for index, tool in enumerate(role.tools):
        if tool.crewai is not None and role.engine != "crewai":
            message = (
                f"tool '{tool.name}' is a CrewAI tool ({tool.crewai}), which only engine: crewai runs: "
                "set `engine: crewai` on this role"
            )
            yield Problem((*here, "tools", index, "crewai"), message)
    if role.scaling.min > role.scaling.max:
        message = f"min ({role.scaling.min}) is more than max ({role.scaling.max})"
        yield Problem((*here, "scaling", "min"), message)


def _tasks(spec: CrewSpec) -> Iterator[Problem]:
    order = list(spec.tasks)
    ordered = spec.process != "parallel"
    for index, (key, task) in enumerate(spec.tasks.items()):
        here: DocPath = ("tasks", key)
        if task.agent is None and spec.process != "hierarchical":
            message = (
                f"task has no agent: add `agent: <one of {', '.join(spec.roles)}>` "
                "(only a hierarchical crew may leave it out)"
            )
            yield Problem((*here, "agent"), message)
        elif task.agent is not None and task.agent not in spec.roles:
            yield Problem((*here, "agent"), f"unknown agent '{task.agent}'" + suggest(task.agent, spec.roles))
        seen: set[str] = set()
        for i, ref in enumerate(task.context or []):
            wrong = _context_ref(key, ref, order, index, ordered, seen, spec.process)
            if wrong is not None:
                yield Problem((*here, "context", i), wrong)
            seen.add(ref)
        if task.output_schema is not None:
            yield from _output_schema(here, task.output_schema)
        yield from _crewai_only(spec, here, task)


CREWAI_TASK_KEYS = ("guardrails", "guardrail_max_retries", "output_pydantic", "output_json", "human_input")
"""Task keys that only CrewAI's own loop honours: a task of another engine's role may not set them."""


def _crewai_only(spec: CrewSpec, here: DocPath, task: TaskSpec) -> Iterator[Problem]:
    set_keys = [k for k in CREWAI_TASK_KEYS if getattr(task, k) not in (None, False, [])]
    engine = spec.roles[task.agent].engine if task.agent in spec.roles else None
    if task.agent is not None and engine not in (None, "crewai"):
        for key in set_keys:
            message = (
                f"'{key}' is honoured only on engine: crewai (CrewAI's loop): set `engine: crewai` on role "
                f"'{task.agent}', or remove it"
            )
            yield Problem((*here, key), message, at_key=True)
    elif task.agent is None and set_keys:
        message = "is honoured only on engine: crewai: give the task an agent whose role runs on it"
        yield Problem((*here, set_keys[0]), f"'{set_keys[0]}' {message}", at_key=True)
    if task.output_pydantic and task.output_json:
        yield Problem((*here, "output_json"), "set output_pydantic or output_json, not both", at_key=True)
    if task.output_schema is not None and (task.output_pydantic or task.output_json):
        message = "a task's output is either its output_schema or its CrewAI model: remove one of them"
        yield Problem((*here, "output_schema"), message, at_key=True)


def _context_ref(
    key: str, ref: str, order: list[str], index: int, ordered: bool, seen: set[str], process: str
) -> str | None:
    if ref == key:
        return "a task cannot use its own output as context"
    if ref not in order:
        return f"unknown task '{ref}'" + suggest(ref, [t for t in order if t != key])
    if ref in seen:
        return f"'{ref}' is listed twice"
    if ordered and order.index(ref) > index:
        return (
            f"'{ref}' comes later in the file: in a {process} crew a task can only use the outputs of "
            f"earlier tasks (move '{key}' below '{ref}', or use process: parallel)"
        )
    return None


def _output_schema(here: DocPath, schema: Mapping[str, object]) -> Iterator[Problem]:
    import jsonschema  # only crews with output schemas pay for it

    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        message = f"not a valid JSON schema{' at ' + where if where else ''}: {exc.message}"
        yield Problem((*here, "output_schema"), message)


def _cycles(spec: CrewSpec) -> list[Problem]:
    """The first dependency cycle through ``context``, reported at the reference that closes it."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(key: str) -> list[Problem]:
        state[key] = 1
        path.append(key)
        for i, ref in enumerate(spec.tasks[key].context or []):
            if state.get(ref) == 1:
                loop = [*path[path.index(ref) :], ref]
                message = (
                    "dependency cycle: " + " -> ".join(loop) + " (each task needs the output of the next)"
                )
                return [Problem(("tasks", key, "context", i), message)]
            if ref not in state and (found := visit(ref)):
                return found
        path.pop()
        state[key] = 2
        return []

    for key in spec.tasks:
        if key not in state and (found := visit(key)):
            return found
    return []


def _placeholders(spec: CrewSpec) -> Iterator[Problem]:
    texts: list[tuple[DocPath, str | None]] = []
    for key, role in spec.roles.items():
        texts += [(("roles", key, name), getattr(role, name)) for name in ("role", "goal", "backstory")]
    for key, task in spec.tasks.items():
        texts += [(("tasks", key, name), getattr(task, name)) for name in ("description", "expected_output")]
        texts.append((("tasks", key, "output_file"), task.output_file))
    for path, text in texts:
        for name in placeholders(text or ""):
            if name not in spec.inputs:
                yield Problem(path, _undeclared(name, list(spec.inputs)))


def _undeclared(name: str, declared: list[str]) -> str:
    close = did_you_mean(name, declared)
    if close is not None:
        return f"{{{name}}} is not a declared input; did you mean {{{close}}}?"
    if declared:
        return (
            f"{{{name}}} is not a declared input (inputs: {', '.join(declared)}): declare it under `inputs:`"
        )
    return f"{{{name}}} is not a declared input: declare it under `inputs:`"


def _budgets(spec: CrewSpec) -> Iterator[Problem]:
    limit = spec.budgets.max_steps
    steps = len(spec.tasks) + (1 if spec.process == "hierarchical" else 0)
    if limit is not None and limit < steps:
        what = f"{len(spec.tasks)} tasks" + (" and a manager step" if spec.process == "hierarchical" else "")
        yield Problem(("budgets", "max_steps"), f"max_steps is {limit} but the crew has {what}")
