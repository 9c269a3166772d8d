"""Read a CrewAI ``crew.py`` with ``ast``, never running it: agents, tasks, their mapping, tools, process.

It understands the ``@CrewBase`` pattern CrewAI generates::

    @agent
    def researcher(self) -> Agent:
        return Agent(config=self.agents_config["researcher"], tools=[SerperDevTool()])

    @task
    def research_task(self) -> Task:
        return Task(config=self.tasks_config["research_task"], agent=self.researcher(), context=[...])

    @crew
    def crew(self) -> Crew:
        return Crew(agents=self.agents, tasks=self.tasks, process=Process.sequential)
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from crews.spec.problems import CrewFileError, SpecIssue

Constant = str | bool | int | float
OBJECT_KEYS = ("guardrail", "guardrails", "output_pydantic", "output_json")
"""Task keywords whose value is the project's code (a function, a model): kept as references, never run."""


@dataclass(frozen=True)
class PyName:
    """A Python object crew.py names, and where it comes from (read, never imported)."""

    written: str
    """As crew.py writes it (``MyTool()``, ``search_tool``)."""
    attribute: str
    """Its name in its module: a class, a function, a model."""
    module: str | None
    """The module it is imported from, relative ones with their dots (``.tools.custom_tool``); None: crew.py."""
    arguments: bool = False
    """Made with arguments in crew.py (``FileReadTool(file_path=...)``)."""


@dataclass(frozen=True)
class AgentDef:
    method: str
    config_key: str
    tools: tuple[str, ...]
    settings: dict[str, Constant]
    line: int
    tool_objects: tuple[PyName | None, ...] = ()
    """Each of ``tools`` as an object of the project or a package (None: crew.py does not say)."""


@dataclass(frozen=True)
class TaskDef:
    method: str
    config_key: str
    agent_method: str | None
    context_methods: tuple[str, ...] | None
    settings: dict[str, Constant]
    line: int
    column: int
    objects: dict[str, list[PyName | str]] = field(default_factory=dict)
    """``OBJECT_KEYS`` written as names (a guardrail function, an output model) or texts, in order."""


@dataclass
class CrewPy:
    """What a crew.py says about its crew; ``None`` where it says nothing."""

    file: str
    agents: dict[str, AgentDef] = field(default_factory=dict)
    tasks: list[TaskDef] = field(default_factory=list)
    process: str | None = None
    manager_llm: str | None = None
    manager_agent: str | None = None
    crew_line: int = 1

    def agent_key(self, method: str) -> str:
        """The agents.yaml key an agent method reads (the method name when it is not an ``@agent``)."""
        found = self.agents.get(method)
        return found.config_key if found else method


def parse_crew_py(text: str, file: str) -> CrewPy:
    """Parse ``crew.py``; a syntax error becomes a located :class:`CrewFileError`."""
    try:
        tree = ast.parse(text, filename=file)
    except SyntaxError as exc:
        issue = SpecIssue(file, exc.lineno or 1, exc.offset or 1, "", f"not valid Python: {exc.msg}")
        raise CrewFileError([issue]) from None
    tools = _module_tools(tree)
    names = _Names(tree)
    out = CrewPy(file)
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        for method in (n for n in cls.body if isinstance(n, ast.FunctionDef)):
            _read_method(method, tools, names, out)
    return out


class _Names:
    """Where crew.py's module-level names come from: its imports, its own defs, its ``x = Tool()`` lines."""

    def __init__(self, tree: ast.Module) -> None:
        self.imported: dict[str, tuple[str, str]] = {}
        self.defined: set[str] = set()
        self.made: dict[str, ast.Call] = {}
        for node in tree.body:
            if isinstance(node, ast.ImportFrom):
                module = "." * node.level + (node.module or "")
                for alias in node.names:
                    self.imported[alias.asname or alias.name] = (module, alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    self.imported[alias.asname or alias.name.partition(".")[0]] = (alias.name, "")
            elif isinstance(node, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef):
                self.defined.add(node.name)
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                for target in (t for t in node.targets if isinstance(t, ast.Name)):
                    self.made[target.id] = node.value

    def of(self, node: ast.expr, arguments: bool = False) -> PyName | None:
        """``MyTool()``, ``my_tool``, ``search_tool`` (made at module level), ``crewai_tools.X()``."""
        if isinstance(node, ast.Call):
            return self.of(node.func, bool(node.args or node.keywords))
        if isinstance(node, ast.Name) and node.id in self.made:
            return self.of(self.made[node.id])
        if isinstance(node, ast.Name) and node.id in self.imported:
            module, attribute = self.imported[node.id]
            return PyName(node.id, attribute, module, arguments) if attribute else None
        if isinstance(node, ast.Name) and node.id in self.defined:
            return PyName(node.id, node.id, None, arguments)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            module, attribute = self.imported.get(node.value.id, ("", ""))
            if module and not attribute:
                return PyName(ast.unparse(node), node.attr, module, arguments)
        return None


def _read_method(method: ast.FunctionDef, tools: dict[str, str], names: _Names, out: CrewPy) -> None:
    decorators = {_name(d) for d in method.decorator_list}
    if "agent" in decorators and (call := _find_call(method, "Agent")):
        kwargs = _kwargs(call)
        key = _config_key(kwargs.get("config"), "agents_config") or method.name
        written = _elements(kwargs.get("tools"))
        tool_names = tuple(_tool_name(t, tools) for t in written)
        found = tuple(names.of(t) for t in written)
        out.agents[method.name] = AgentDef(
            method.name, key, tool_names, _constants(kwargs), method.lineno, found
        )
    elif "task" in decorators and (call := _find_call(method, "Task")):
        kwargs = _kwargs(call)
        key = _config_key(kwargs.get("config"), "tasks_config") or method.name
        context = kwargs.get("context")
        methods = None if context is None else tuple(m for m in map(_self_method, _elements(context)) if m)
        agent_method = _self_method(kwargs["agent"]) if "agent" in kwargs else None
        where = (method.lineno, method.col_offset + 1)
        objects = {k: _objects(kwargs[k], names) for k in OBJECT_KEYS if k in kwargs}
        task = TaskDef(method.name, key, agent_method, methods, _constants(kwargs), *where, objects)
        out.tasks.append(task)
    elif "crew" in decorators and (call := _find_call(method, "Crew")):
        kwargs = _kwargs(call)
        out.crew_line = call.lineno
        out.process = _process(kwargs.get("process"))
        out.manager_llm = _llm(kwargs.get("manager_llm"))
        out.manager_agent = _self_method(kwargs["manager_agent"]) if "manager_agent" in kwargs else None


def _objects(node: ast.expr, names: _Names) -> list[PyName | str]:
    """A keyword's value as names and texts: ``fn``, ``"rule"``, ``[fn, "rule"]``, ``Model``."""
    out: list[PyName | str] = []
    for item in _elements(node) if isinstance(node, ast.List | ast.Tuple) else [node]:
        if isinstance(item, ast.Constant) and isinstance(item.value, str):
            out.append(item.value)
        else:
            out.append(names.of(item) or PyName(ast.unparse(item), ast.unparse(item), "?"))
    return out


def _module_tools(tree: ast.Module) -> dict[str, str]:
    """Module-level ``search_tool = SerperDevTool(...)``: variable name → tool class name."""
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    out[target.id] = _name(node.value.func)
    return out


def _name(node: ast.expr) -> str:
    """``agent``, ``crewai.project.agent``, ``agent()`` → ``agent``."""
    if isinstance(node, ast.Call):
        return _name(node.func)
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _find_call(method: ast.FunctionDef, callee: str) -> ast.Call | None:
    for node in ast.walk(method):
        if isinstance(node, ast.Call) and _name(node.func) == callee:
            return node
    return None


def _kwargs(call: ast.Call) -> dict[str, ast.expr]:
    return {k.arg: k.value for k in call.keywords if k.arg is not None}


def _constants(kwargs: dict[str, ast.expr]) -> dict[str, Constant]:
    """Keyword arguments written as plain values (``output_file="out.md"``, ``max_iter=5``)."""
    return {
        k: v.value
        for k, v in kwargs.items()
        if isinstance(v, ast.Constant) and isinstance(v.value, str | bool | int | float)
    }


def _config_key(node: ast.expr | None, attr: str) -> str | None:
    """``self.tasks_config["x"]`` → ``x``."""
    if (
        isinstance(node, ast.Subscript)
        and _name(node.value) == attr
        and isinstance(node.slice, ast.Constant)
        and isinstance(node.slice.value, str)
    ):
        return node.slice.value
    return None


def _elements(node: ast.expr | None) -> list[ast.expr]:
    return list(node.elts) if isinstance(node, ast.List | ast.Tuple) else []


def _self_method(node: ast.expr) -> str | None:
    """``self.researcher()`` or ``self.researcher`` → ``researcher``."""
    target = node.func if isinstance(node, ast.Call) else node
    if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
        return target.attr
    return None


def _tool_name(node: ast.expr, module_tools: dict[str, str]) -> str:
    if isinstance(node, ast.Name) and node.id in module_tools:
        return module_tools[node.id]
    return _self_method(node) or _name(node) or ast.unparse(node)


def _process(node: ast.expr | None) -> str | None:
    """``Process.hierarchical`` or ``"hierarchical"`` → ``hierarchical``."""
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _llm(node: ast.expr | None) -> str | None:
    """``"gpt-4o"`` or ``LLM(model="gpt-4o")`` → ``gpt-4o``."""
    if isinstance(node, ast.Call):
        model = _kwargs(node).get("model") or (node.args[0] if node.args else None)
        return _llm(model)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None
