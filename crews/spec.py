"""The crew file: one YAML file per crew, read into pydantic models (``extra="forbid"``).

A leaf: it imports nothing of crews but its own private helpers and
``crews.errors``, so a role worker can read crew files cheaply.

    load_crew(path) / load_crew_text(text, filename) -> CrewSpec   (raise CrewFileError)
    crew_json_schema() -> dict                                       (for editors)
    dump_crew(spec) -> str                                           (YAML that loads back equal)
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from crews import _spec_checks
from crews._spec_checks import PLACEHOLDER, matches_type, placeholders
from crews._spec_errors import CrewFileError, CrewSpecProblems, Problem, SpecIssue, problems_from_validation
from crews._yaml_positions import Positions, load_yaml, require_mapping

__all__ = [
    "MANAGER_ROLE",
    "PLACEHOLDER",
    "Budgets",
    "CrewFileError",
    "CrewSpec",
    "CrewSpecProblems",
    "Engine",
    "InputSpec",
    "InputType",
    "LLMSpec",
    "ProcessKind",
    "RoleSpec",
    "ScalingSpec",
    "SpecIssue",
    "TaskSpec",
    "ToolRef",
    "crew_from_data",
    "crew_json_schema",
    "dump_crew",
    "is_token",
    "load_crew",
    "load_crew_text",
    "matches_type",
    "placeholders",
]

Engine = Literal["native", "crewai", "adk", "a2a"]
ProcessKind = Literal["sequential", "hierarchical", "parallel"]
InputType = Literal["string", "integer", "number", "boolean", "object", "array"]

MANAGER_ROLE = "manager"
"""Role key of the manager that ``manager_llm`` creates in a hierarchical crew."""

_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
_TASK = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_INPUT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def is_token(name: str) -> bool:
    """Whether ``name`` can be one NATS subject token (crew, role and step names must)."""
    return _TOKEN.fullmatch(name) is not None


def _token_name(what: str) -> AfterValidator:
    def check(name: str) -> str:
        if not _TOKEN.fullmatch(name):
            raise ValueError(
                f"'{name}' cannot be a {what} name: use only letters, digits, '_' and '-' "
                "(it becomes part of NATS subjects)"
            )
        return name

    return AfterValidator(check)


def _task_name(name: str) -> str:
    if not _TASK.fullmatch(name):
        raise ValueError(
            f"'{name}' cannot be a task name: start with a letter or digit and use only "
            "letters, digits, '_' and '-' (it becomes the step id)"
        )
    return name


def _input_name(name: str) -> str:
    if not _INPUT.fullmatch(name):
        raise ValueError(
            f"'{name}' cannot be an input name: start with a letter or '_' and use only "
            "letters, digits, '_' and '-' (it is written as {" + name + "} in texts)"
        )
    return name


def _pattern(regex: re.Pattern[str]) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "pattern": f"^{regex.pattern}$"})


CrewName = Annotated[str, _token_name("crew"), _pattern(_TOKEN)]
RoleName = Annotated[str, _token_name("role"), _pattern(_TOKEN)]
TaskName = Annotated[str, AfterValidator(_task_name), _pattern(_TASK)]
InputName = Annotated[str, AfterValidator(_input_name), _pattern(_INPUT)]
Text = Annotated[str, Field(min_length=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSpec(_Model):
    """One input of a crew, written as ``{name}`` in role and task texts."""

    type: InputType = "string"
    default: JsonValue = Field(None, description="Value used when a job does not give one; none: required.")
    description: str = ""

    @property
    def required(self) -> bool:
        return self.default is None


class LLMSpec(_Model):
    """Model and sampling parameters; a bare string is the model name."""

    model: str | None = Field(None, description="Model name in the LLM pool; none: the pool's default.")
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, gt=0, description="Most tokens one completion may produce.")
    seed: int | None = None
    stop: list[str] | None = None
    repetition_penalty: float | None = Field(
        None,
        gt=0,
        le=2,
        description="vLLM's penalty on repeated tokens (>1 repeats less); small models need ~1.1.",
    )


class ToolRef(_Model):
    """A tool a role may call; a bare string is the tool name."""

    name: Text
    approval: Literal["none", "required"] = Field(
        "none", description="'required': each call waits until a person approves it."
    )


class ScalingSpec(_Model):
    """How many workers the role runs, scaled on its queue depth."""

    min: int = Field(1, ge=0, description="Fewest workers; 0 lets the role scale to zero.")
    max: int = Field(5, ge=1, description="Most workers.")
    target_queue_depth: int = Field(5, ge=1, description="Waiting steps per worker before scaling out.")


def _model_shorthand(value: Any) -> Any:
    return {"model": value} if isinstance(value, str) else value


def _tool_shorthand(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


LLM = Annotated[LLMSpec, BeforeValidator(_model_shorthand, json_schema_input_type=str | LLMSpec)]
Tool = Annotated[ToolRef, BeforeValidator(_tool_shorthand, json_schema_input_type=str | ToolRef)]
Input = Annotated[
    InputSpec, BeforeValidator(lambda v: {} if v is None else v, json_schema_input_type=InputSpec | None)
]


class RoleSpec(_Model):
    """A specialist of the crew: its own worker process, queue and scaling."""

    role: Text = Field(description="Job title, e.g. 'Research Analyst'.")
    goal: Text
    backstory: str = ""
    llm: LLM | None = None
    engine: Engine = "native"
    url: str | None = Field(None, description="engine a2a: the remote agent's HTTP A2A endpoint.")
    nats: str | None = Field(
        None, description="engine a2a: the remote agent's name on NATS (crews.a2a.<name>)."
    )
    headers_from: str | None = Field(
        None, description="engine a2a: name of the setting holding the headers (e.g. an API key) to send."
    )
    tools: list[Tool] = []
    allow_delegation: bool = False
    max_iter: int = Field(25, ge=1, description="Most reasoning/tool iterations per step.")
    max_execution_time: float | None = Field(None, gt=0, description="Seconds a step may take.")
    scaling: ScalingSpec = ScalingSpec()


class TaskSpec(_Model):
    """A piece of work for one role; it becomes one step of each job."""

    description: Text
    expected_output: Text
    agent: str | None = Field(None, description="Role key; may be left out only in a hierarchical crew.")
    context: list[str] | None = Field(
        None, description="Tasks whose outputs this task receives; left out: the previous task's output."
    )
    output_schema: dict[str, JsonValue] | None = Field(None, description="JSON schema the output must match.")
    guardrail: str | None = Field(
        None, description="A rule the output must satisfy, checked before it is used."
    )
    human_input: bool = False
    output_file: str | None = None


class Budgets(_Model):
    max_tokens: int | None = Field(None, gt=0, description="Most LLM tokens one job may use.")
    max_steps: int | None = Field(None, gt=0, description="Most steps one job may run, added steps included.")


class CrewSpec(_Model):
    """A crew: its roles, its tasks and how they run."""

    name: CrewName
    description: str = ""
    process: ProcessKind = "sequential"
    manager: str | None = Field(None, description="hierarchical: the role key of the manager.")
    manager_llm: LLM | None = Field(None, description="hierarchical: the model of a generic manager.")
    inputs: dict[InputName, Input] = {}
    roles: Annotated[dict[RoleName, RoleSpec], Field(min_length=1)]
    tasks: Annotated[dict[TaskName, TaskSpec], Field(min_length=1)]
    budgets: Budgets = Budgets()
    memory: bool = Field(
        True,
        description="Give every native role the shared-memory tools (memory_read, memory_write). Turn off "
        "for small models, which do better with fewer tools in the prompt.",
    )

    @model_validator(mode="after")
    def _cross_checks(self) -> CrewSpec:
        problems = _spec_checks.check(self)
        if problems:
            raise CrewSpecProblems(problems)
        return self

    @property
    def manager_role(self) -> str | None:
        """Role key of the manager of a hierarchical crew (``MANAGER_ROLE`` for ``manager_llm``)."""
        if self.process != "hierarchical":
            return None
        return self.manager or MANAGER_ROLE

    def all_roles(self) -> dict[str, RoleSpec]:
        """Every role that needs a worker, with the manager that ``manager_llm`` implies."""
        if self.process != "hierarchical" or self.manager is not None or self.manager_llm is None:
            return dict(self.roles)
        manager = RoleSpec(
            role="Crew Manager",
            goal="Split the crew's work among the team and check that each task is done well.",
            backstory="You lead a team of specialists and know what each of them does best.",
            llm=self.manager_llm,
            allow_delegation=True,
        )
        return {**self.roles, MANAGER_ROLE: manager}


def crew_from_data(data: object, positions: Positions) -> CrewSpec:
    """Validate a parsed crew file; every problem is reported at its place in the file(s)."""
    hint = _crewai_hint(data)
    if hint is not None:
        raise CrewFileError(positions.locate([hint]))
    try:
        return CrewSpec.model_validate(data)
    except CrewSpecProblems as exc:
        raise CrewFileError(positions.locate(exc.problems)) from None
    except ValidationError as exc:
        raise CrewFileError(positions.locate(problems_from_validation(exc, data, CrewSpec))) from None


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


def load_crew_text(text: str, filename: str = "<crew>") -> CrewSpec:
    """Read a crew file's text; raises :class:`CrewFileError` naming file, line, column and field."""
    located = load_yaml(text, filename)
    data = require_mapping(located, "crew file", "name, roles and tasks")
    return crew_from_data(data, located.positions)


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


def dump_crew(spec: CrewSpec) -> str:
    """The crew as YAML, leaving out defaults; loading it gives back an equal ``CrewSpec``."""
    data = spec.model_dump(mode="json", exclude_defaults=True)
    for role in data["roles"].values():
        role["tools"] = [t["name"] if t.keys() == {"name"} else t for t in role.get("tools", [])] or None
        if role.get("llm", {}).keys() == {"model"}:
            role["llm"] = role["llm"]["model"]
    if data.get("manager_llm", {}).keys() == {"model"}:
        data["manager_llm"] = data["manager_llm"]["model"]
    data["roles"] = {k: {f: v for f, v in r.items() if v is not None} for k, r in data["roles"].items()}
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)
