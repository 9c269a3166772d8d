"""The crew file's models: one YAML file per crew, read into pydantic models (``extra="forbid"``).

``crews.spec`` is a leaf: it imports nothing of crews but ``crews.errors``
(and the bus contract a step is built into), so a role worker can read crew
files cheaply. Reading files: ``crews.spec.load``; writing them:
``crews.spec.dump``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    WithJsonSchema,
    model_validator,
)

from bus.contracts.evals import EvalPolicy, EvalSpec
from crews.spec import rules as _spec_checks
from crews.spec.problems import FORBIDDEN_ROLE_FIELDS, CrewFileError, CrewSpecProblems, SpecIssue
from crews.spec.rules import PLACEHOLDER, matches_type, placeholders

__all__ = [
    "FORBIDDEN_ROLE_FIELDS",
    "MANAGER_ROLE",
    "PLACEHOLDER",
    "Budgets",
    "CrewFileError",
    "CrewSpec",
    "CrewSpecProblems",
    "Engine",
    "FunctionGuardrail",
    "InputSpec",
    "InputType",
    "LLMSpec",
    "ProcessKind",
    "RoleSpec",
    "ScalingSpec",
    "SpecIssue",
    "TaskSpec",
    "ToolRef",
    "is_token",
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
_TOOL = re.compile(r"[A-Za-z0-9_-]{1,64}(\.([A-Za-z0-9_-]{1,64}|\*))?")
_PROJECT_REF = re.compile(r"project:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")
_CREWAI_TOOL_REF = re.compile(rf"{_PROJECT_REF.pattern}|crewai_tools:[A-Za-z_]\w*")


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


def _tool_name(name: str) -> str:
    if not _TOOL.fullmatch(name) or ("__" in name and "." not in name):
        raise ValueError(
            f"'{name}' cannot be a tool name: write a Python tool's name (letters, digits, '_', '-'), "
            "or an MCP server's tool as <server>.<tool> (e.g. payments.refund), or <server>.* for all of them"
        )
    return name


def _reference(regex: re.Pattern[str], what: str) -> AfterValidator:
    def check(ref: str) -> str:
        if not regex.fullmatch(ref):
            raise ValueError(
                f"'{ref}' cannot be {what}: write project:<package>.<module>:<name> (an object of the CrewAI "
                "project the operator declared, e.g. project:my_crew.tools.custom_tool:MyCustomTool)"
                + (" or crewai_tools:<Class>" if regex is _CREWAI_TOOL_REF else "")
            )
        return ref

    return AfterValidator(check)


def _pattern(regex: re.Pattern[str]) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "pattern": f"^{regex.pattern}$"})


CrewName = Annotated[str, _token_name("crew"), _pattern(_TOKEN)]
AgentName = Annotated[str, _token_name("outside agent"), _pattern(_TOKEN)]
RoleName = Annotated[str, _token_name("role"), _pattern(_TOKEN)]
TaskName = Annotated[str, AfterValidator(_task_name), _pattern(_TASK)]
InputName = Annotated[str, AfterValidator(_input_name), _pattern(_INPUT)]
Text = Annotated[str, Field(min_length=1)]
ToolName = Annotated[str, AfterValidator(_tool_name), _pattern(_TOOL)]
ProjectRef = Annotated[
    str, _reference(_PROJECT_REF, "a reference to the CrewAI project's code"), _pattern(_PROJECT_REF)
]
CrewAIToolRef = Annotated[
    str, _reference(_CREWAI_TOOL_REF, "a reference to a CrewAI tool"), _pattern(_CREWAI_TOOL_REF)
]


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

    name: ToolName
    approval: Literal["none", "required"] | None = Field(
        None,
        description="'required': each call waits until a person approves it; 'none': no approval, unless "
        "the operator requires one. Left out: approval for every tool the server does not mark read-only.",
    )
    crewai: CrewAIToolRef | None = Field(
        None,
        description="engine crewai: the CrewAI tool this name stands for, by import path: "
        "project:<package>.<module>:<name> (a BaseTool class or instance, or an @tool function, of a CrewAI "
        "project the operator declared: CREWS_PROJECT_PATHS, `crews up --project`), or crewai_tools:<Class>. "
        "The crew file names the code; it never carries it.",
    )


class FunctionGuardrail(_Model):
    """A guardrail function of the CrewAI project: ``(TaskOutput) -> (bool, Any)``, as CrewAI calls it."""

    function: ProjectRef


Guardrail = Annotated[Text | FunctionGuardrail, Field(union_mode="left_to_right")]


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

    role: str = Field(description="Job title, e.g. 'Research Analyst' (may be empty, as in CrewAI).")
    goal: str = Field(description="What the role is after (may be empty, as in CrewAI).")
    backstory: str = ""
    llm: LLM | None = None
    engine: Engine = "native"
    agent: AgentName | None = Field(
        None,
        description="engine a2a: the name of an outside A2A agent the operator declared (CREWS_A2A_AGENTS); "
        "its address and credentials are the operator's, never the crew file's.",
    )
    tools: list[Tool] = []
    allow_delegation: bool = False
    max_iter: int = Field(25, ge=1, description="Most reasoning/tool iterations per step.")
    max_execution_time: float | None = Field(None, gt=0, description="Seconds a step may take.")
    max_rpm: int | None = Field(
        None, gt=0, description="engine crewai: most LLM calls per minute (CrewAI's max_rpm)."
    )
    scaling: ScalingSpec = ScalingSpec()


class TaskSpec(_Model):
    """A piece of work for one role; it becomes one step of each job."""

    description: str = Field(description="What to do (may be empty, as in CrewAI).")
    expected_output: str = Field(
        description="What the answer should be; may be empty (CrewAI accepts an empty one), never left out."
    )
    agent: str | None = Field(None, description="Role key; may be left out only in a hierarchical crew.")
    context: list[str] | None = Field(
        None, description="Tasks whose outputs this task receives; left out: the previous task's output."
    )
    output_schema: dict[str, JsonValue] | None = Field(None, description="JSON schema the output must match.")
    guardrail: Text | None = Field(
        None, description="A rule the output must satisfy, checked before it is used (engine crewai)."
    )
    guardrails: Annotated[list[Guardrail], BeforeValidator(lambda v: [v] if isinstance(v, str) else v)] = (
        Field(
            [],
            description="engine crewai: CrewAI's guardrails, checked in order after `guardrail`: rules in words "
            "(LLM guardrails) or {function: project:<package>.<module>:<name>}.",
        )
    )
    guardrail_max_retries: int | None = Field(
        None, description="engine crewai: retries after a guardrail says no (left out: CrewAI's 3)."
    )
    output_pydantic: ProjectRef | None = Field(
        None,
        description="engine crewai: a pydantic model of the CrewAI project; the output is its JSON, validated.",
    )
    output_json: ProjectRef | None = Field(
        None, description="engine crewai: as output_pydantic (CrewAI's output_json: the model's JSON)."
    )
    human_input: bool = Field(
        False,
        description="engine crewai: a person reviews the answer (the step waits as for an approval); their "
        "comment on a denial is fed back to the agent, as CrewAI does, until one approves.",
    )
    output_file: str | None = None
    evals: list[EvalSpec] = Field(
        [],
        max_length=20,
        description="Quality checks scored after the step (deterministic, or an LLM judge).",
    )


class Budgets(_Model):
    max_tokens: int | None = Field(None, gt=0, description="Most LLM tokens one job may use.")
    max_steps: int | None = Field(None, gt=0, description="Most steps one job may run, added steps included.")
    max_cost_usd: float | None = Field(
        None, gt=0, description="Most USD one job may spend on the LLM, at the operator's CREWS_LLM_PRICES."
    )


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
    eval_policy: EvalPolicy = Field(
        "flag", description="A failed eval: 'flag' records it, 'fail' fails the job."
    )
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
