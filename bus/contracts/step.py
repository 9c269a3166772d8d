"""One step of a job as an A2A ``SendMessage`` request: everything the worker needs, no job state.

The message's first part is the task text (so any A2A agent can do the step);
its data part (media type ``STEP_MEDIA_TYPE``) carries ``StepWork``: the role
prompt, task, context outputs, allowed tools, LLM parameters, budget, and the
Redis keys where the worker records its result, usage and shared memory.

On the wire (``request_json``, ``work_from_json``) the request is the protobuf JSON
mapping of ``to_request(work)``; the data part, a ``google.protobuf.Value`` whose
mapping is the JSON value itself, is written and read by ``json`` directly instead
of through a ``Struct`` (the same document for a third of the CPU, bench/FINDINGS.md).
The envelope is still written and checked by the A2A type.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from a2a.types import Message, Part, Role, SendMessageConfiguration, SendMessageRequest
from google.protobuf import json_format
from pydantic import BaseModel, ConfigDict, Field

from bus.contracts.evals import EvalSpec
from bus.contracts.keys import StepKeys

__all__ = ["StepKeys"]  # re-exported: the keys a step carries

STEP_MEDIA_TYPE = "application/vnd.crews.step+json"

Engine = Literal["native", "crewai", "adk", "a2a"]


class RolePrompt(BaseModel):
    role: str
    goal: str
    backstory: str = ""


class ContextOutput(BaseModel):
    """The output of a step this step depends on."""

    step: str
    task: str
    output: str


class LLMParams(BaseModel):
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: list[str] | None = None
    repetition_penalty: float | None = None

    def extra_body(self) -> dict[str, Any] | None:
        """The sampling parameters beyond the client's named ones, as set (none: None)."""
        extra = self.model_dump(include={"top_p", "seed", "stop", "repetition_penalty"}, exclude_none=True)
        return extra or None


class RemoteAgent(BaseModel):
    """Where an ``engine: a2a`` role's steps go: an outside agent the operator declared, by name.

    The address and the credentials are the worker's (the operator's declaration), never the step's.
    """

    model_config = ConfigDict(extra="forbid")

    agent: str


class CrewAIGuardrail(BaseModel):
    """One of a task's CrewAI guardrails: a rule in words (an LLM guardrail) or a project function by path."""

    model_config = ConfigDict(extra="forbid")

    rule: str | None = None
    function: str | None = Field(None, description="project:<package>.<module>:<name>")


class CrewAIParts(BaseModel):
    """What an ``engine: crewai`` step takes from the CrewAI project, by import path (never code)."""

    model_config = ConfigDict(extra="forbid")

    tools: dict[str, str] = Field(
        default_factory=dict,
        description="tool name (as the crew file names it) → project:<package>.<module>:<name> or "
        "crewai_tools:<Class>; resolved only against the project paths the operator declared",
    )
    guardrails: list[CrewAIGuardrail] = Field(default_factory=list)
    guardrail_max_retries: int | None = None
    output_model: str | None = Field(None, description="a pydantic model of the project: the output's shape")
    human_input: bool = False


class StepWork(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job: str
    crew: str
    step: str
    task: str
    role: str
    plan_version: int = 1
    engine: Engine = "native"
    prompt: RolePrompt
    description: str
    expected_output: str = ""
    context: list[ContextOutput] = Field(default_factory=list)
    tools: list[str] = Field(default_factory=list)
    memory: bool = Field(True, description="offer the shared-memory tools")
    approval_tools: list[str] = Field(
        default_factory=list,
        description="tools (or server.*) whose calls the crew file wants approved (approval: required)",
    )
    approval_waived: list[str] = Field(
        default_factory=list,
        description="tools (or server.*) the crew file runs without approval (approval: none), unless "
        "the operator requires it",
    )
    output_schema: dict[str, Any] | None = None
    evals: list[EvalSpec] = Field(default=[], description="Checks the worker scores the output with.")
    guardrail: str | None = Field(
        None, description="the task's guardrail: a rule the output must satisfy (CrewAI's; crewai engine)"
    )
    crewai: CrewAIParts | None = Field(
        None, description="engine crewai: the project's tools, guardrails, output model, human_input"
    )
    llm: LLMParams = Field(default_factory=LLMParams)
    max_iter: int = 10
    max_rpm: int | None = Field(
        None, description="most LLM calls per minute (CrewAI's max_rpm; crewai engine)"
    )
    max_execution_time_s: float | None = None
    max_tokens_budget: int | None = None
    max_cost_usd_budget: float | None = None
    keys: StepKeys
    remote: RemoteAgent | None = None

    @property
    def task_id(self) -> str:
        """The A2A task id of this step: stable across retries and redeliveries."""
        return step_task_id(self.job, self.step)


def step_task_id(job: str, step: str) -> str:
    return f"{job}.{step}"


def _envelope(work: StepWork) -> SendMessageRequest:
    """The request without its data part: the task text, ids, non-blocking."""
    message = Message(
        message_id=f"{work.task_id}:{work.plan_version}",
        context_id=work.job,
        task_id=work.task_id,
        role=Role.ROLE_USER,
    )
    message.parts.append(Part(text=work.description))
    return SendMessageRequest(
        message=message, configuration=SendMessageConfiguration(return_immediately=True)
    )


def to_request(work: StepWork) -> SendMessageRequest:
    """Wrap ``work`` as an A2A ``SendMessage`` request (non-blocking: the worker streams events)."""
    request = _envelope(work)
    data = Part(media_type=STEP_MEDIA_TYPE)
    # Struct.update, not json_format.ParseDict: the same Value in a third of the CPU
    data.data.struct_value.update(work.model_dump(mode="json", exclude_none=True))
    request.message.parts.append(data)
    return request


def request_json(work: StepWork) -> bytes:
    """``to_request(work)`` in the protobuf JSON mapping, as ``bus.contracts.codec.encode`` writes it
    (``decode`` of it equals ``to_request(work)``)."""
    envelope = json_format.MessageToDict(_envelope(work))
    step = {"data": work.model_dump(mode="json", exclude_none=True), "mediaType": STEP_MEDIA_TYPE}
    envelope["message"]["parts"].append(step)
    return json.dumps(envelope).encode()


def from_request(request: SendMessageRequest) -> StepWork:
    """The ``StepWork`` inside a step request; ``ValueError`` when it has none."""
    for part in request.message.parts:
        if part.media_type == STEP_MEDIA_TYPE:
            return StepWork.model_validate(json_format.MessageToDict(part.data))
    raise ValueError(f"message {request.message.message_id} carries no {STEP_MEDIA_TYPE} part")


def work_from_json(data: bytes) -> StepWork:
    """The ``StepWork`` in a step request's JSON, as ``from_request(decode(data, SendMessageRequest))`` reads it.

    The envelope is parsed as the A2A ``SendMessageRequest`` (unknown fields refused, types checked);
    the step's data part is validated from its JSON value. ``ValueError`` (pydantic's
    ``ValidationError`` is one) when ``data`` is not a step request.
    """
    try:
        document = json.loads(data)
        parts = document["message"]["parts"]
        step = next(part for part in parts if part.get("mediaType") == STEP_MEDIA_TYPE)
        payload = step.pop("data")
    except (KeyError, TypeError, AttributeError, StopIteration) as exc:
        raise ValueError(f"not a step request: it carries no {STEP_MEDIA_TYPE} data part") from exc
    try:
        json_format.ParseDict(document, SendMessageRequest())  # the envelope, less the payload checked below
    except json_format.ParseError as exc:
        raise ValueError(f"not a step request: {exc}") from exc
    return StepWork.model_validate(payload)  # not an object, or not a step: ValidationError
