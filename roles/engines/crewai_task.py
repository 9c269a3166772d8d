"""What a crewai step's ``Task`` takes from the crew file and the CrewAI project: guardrails, output model, human input.

- guardrails, in order: the output check (the step's output schema or the
  project's output model), the task's ``guardrail`` (a rule in words: CrewAI's
  LLM guardrail on the role's LLM), then its ``guardrails`` (rules in words,
  and project functions ``(TaskOutput) -> (bool, Any)`` by import path). CrewAI
  runs them and, on a no, sends the answer back with the guardrail's feedback,
  up to ``guardrail_max_retries`` times (CrewAI's default, 3; with only the
  output check, one repair, as the native engine);
- ``output_pydantic`` / ``output_json``: the project's pydantic model; the call
  asks for its JSON schema, the check validates with the model itself, and the
  step's output is the model's JSON;
- ``human_input``: CrewAI's human-input provider is ``GateHumanInput``, which
  asks a person through the step's approval gate (the same record, pause and
  API as a tool approval, tool ``human_input``, the answer as its argument):
  an approval accepts the answer; a denial's comment is the feedback CrewAI
  gives the agent, which answers again and is asked about again.

Imported only by ``roles.engines.crewai`` (CrewAI is loaded lazily).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crewai.agents.parser import AgentFinish
from crewai.core.providers.human_input import ExecutorContext, SyncHumanInputProvider
from crewai.tasks.task_output import TaskOutput
from pydantic import BaseModel, ValidationError

from bus.contracts.step import StepWork
from roles.engines import prompts
from roles.engines.crewai_bridge import Bridge
from roles.engines.crewai_project import ProjectCode
from roles.engines.native import OutputInvalid, OutputSchema
from roles.errors import StepFailed
from roles.step.approvals import ApprovalGate

HUMAN_INPUT = "human_input"
NO_COMMENT = "A person did not accept this answer: improve it."
CREWAI_RETRIES = 3


@dataclass(frozen=True)
class OutputCheck:
    """The step's output shape: a JSON schema, and the project's model when there is one."""

    schema: OutputSchema
    model: type[BaseModel] | None = None

    def parse(self, text: str) -> tuple[str, Any]:
        """The answer as (text, data), validated; ``OutputInvalid`` with the reason otherwise."""
        text, data = self.schema.parse(text)
        if self.model is None:
            return text, data
        try:
            value = self.model.model_validate(data)
        except ValidationError as exc:
            raise OutputInvalid(str(exc)) from exc
        return value.model_dump_json(), value.model_dump(mode="json")

    def guardrail(self) -> Any:
        def matches_output_schema(output: TaskOutput) -> tuple[bool, Any]:
            try:
                text, _ = self.parse(output.raw.strip())
            except OutputInvalid as exc:
                return False, prompts.schema_repair(str(exc), self.schema.schema)
            return True, text

        return matches_output_schema


def output_check(work: StepWork, code: ProjectCode) -> OutputCheck | None:
    """The step's output schema, or the project's output model and its schema; None: free text."""
    ref = work.crewai.output_model if work.crewai else None
    if ref is not None:
        model = code.load(ref, "output model")
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise StepFailed(f"output model {ref!r} is a {type(model).__name__}, not a pydantic model class")
        return OutputCheck(OutputSchema(model.model_json_schema(), work.step), model)
    if work.output_schema is not None:
        return OutputCheck(OutputSchema(work.output_schema, work.step))
    return None


def task_guardrails(work: StepWork, check: OutputCheck | None, code: ProjectCode) -> tuple[list[Any], int]:
    """The Task's guardrails in order and its ``guardrail_max_retries``."""
    guardrails: list[Any] = [check.guardrail()] if check else []
    if work.guardrail:
        guardrails.append(work.guardrail)  # CrewAI's LLM guardrail: the role's LLM checks the rule
    parts = work.crewai
    for entry in parts.guardrails if parts else []:
        if entry.function is not None:
            function = code.load(entry.function, "guardrail")
            if not callable(function):
                raise StepFailed(
                    f"guardrail {entry.function!r} is a {type(function).__name__}, not a function"
                )
            guardrails.append(function)
        elif entry.rule:
            guardrails.append(entry.rule)
    own = len(guardrails) > (1 if check else 0)
    retries = parts.guardrail_max_retries if parts and parts.guardrail_max_retries is not None else None
    return guardrails, retries if retries is not None else (CREWAI_RETRIES if own else 1)


class GateHumanInput(SyncHumanInputProvider):
    """CrewAI's human feedback, asked of a person through the step's approval gate instead of a terminal."""

    def __init__(self, gate: ApprovalGate | None, bridge: Bridge, step: str) -> None:
        self._gate, self._bridge, self._step = gate, bridge, step
        self._round = 0

    def handle_feedback(self, formatted_answer: AgentFinish, context: ExecutorContext) -> AgentFinish:
        answer = formatted_answer
        while True:
            feedback = self._ask(self._get_output_string(answer))
            if not feedback:
                context.ask_for_human_input = False
                return answer
            context.messages.append(context._format_feedback_message(feedback))
            answer = context._invoke_loop()

    def _ask(self, answer: str) -> str:
        """A person's feedback on ``answer``: empty when they accept it."""
        if self._gate is None:
            raise StepFailed(f"step {self._step!r} has human_input, but this step cannot ask a person")
        self._round += 1
        call_id = f"{HUMAN_INPUT}-{self._round}"
        record = self._bridge.call(
            self._gate.decide(HUMAN_INPUT, call_id, {"answer": answer}, f"{self._step}:{call_id}")
        )
        if record.status == "approved":
            return ""
        return record.comment.strip() or NO_COMMENT
