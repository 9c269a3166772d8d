"""A2A message → a crew's inputs.

- Every data part must be a JSON object; its keys are input names, and later
  parts win (``{"topic": "bees", "words": 120}``).
- The text parts, joined by newlines, fill one input: the input named
  ``request`` when the crew has one; else the crew's one required input that
  no data part gave; else the crew's only input. A crew without inputs ignores
  the text. When no input fits (several required inputs are missing), the
  call is refused, saying to send them as a data part.
- Numbers arrive as JSON numbers (protobuf ``Value`` has no integers): a whole
  number given for an ``integer`` input is taken as one.

The result is then planned (``crews.plan.planner.plan``), so a missing or mistyped
input is refused with ``InvalidParamsError`` naming it before any job exists.
"""

from __future__ import annotations

from typing import Any

from a2a.types import Message
from a2a.utils.errors import InvalidParamsError
from google.protobuf import json_format

from crews.errors import PlanError
from crews.plan.planner import plan
from crews.spec.models import CrewSpec

TEXT_INPUT = "request"
"""An input of this name takes a message's text, whatever other inputs the crew has."""


def message_inputs(spec: CrewSpec, message: Message) -> dict[str, Any]:
    """The crew's inputs from ``message``, checked against the crew (``InvalidParamsError`` names the problem)."""
    inputs: dict[str, Any] = {}
    for part in message.parts:
        if part.WhichOneof("content") == "data":
            inputs.update(_data_inputs(spec, json_format.MessageToDict(part.data)))
    text = "\n".join(
        part.text for part in message.parts if part.WhichOneof("content") == "text" and part.text
    )
    if text and spec.inputs:
        inputs.setdefault(text_input(spec, inputs), text)
    try:
        plan(spec, inputs)
    except PlanError as exc:
        raise InvalidParamsError(message=str(exc)) from exc
    return inputs


def _data_inputs(spec: CrewSpec, value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidParamsError(
            message=f"a data part must be a JSON object of the crew's inputs ({_names(spec)}), "
            f"not {type(value).__name__}"
        )
    return {name: _whole(spec, name, item) for name, item in value.items()}


def _whole(spec: CrewSpec, name: str, value: object) -> object:
    declared = spec.inputs.get(name)
    if (
        declared is not None
        and declared.type == "integer"
        and isinstance(value, float)
        and value.is_integer()
    ):
        return int(value)
    return value


def text_input(spec: CrewSpec, given: dict[str, Any]) -> str:
    """The input a message's text fills (see the module docstring)."""
    if TEXT_INPUT in spec.inputs:
        return TEXT_INPUT
    missing = [name for name, spec_input in spec.inputs.items() if spec_input.required and name not in given]
    if len(missing) == 1:
        return missing[0]
    if len(spec.inputs) == 1:
        return next(iter(spec.inputs))
    if not missing:
        raise InvalidParamsError(
            message=f"crew '{spec.name}' has no input for the message's text: every input it needs "
            f"({_names(spec)}) was given in data parts; leave the text out"
        )
    raise InvalidParamsError(
        message=f"crew '{spec.name}' needs the inputs {', '.join(missing)}: send them in a data part, "
        f'e.g. {{"{missing[0]}": "...", "{missing[1]}": "..."}} (a text part fills an input only when the '
        f"crew has one required input, or one named '{TEXT_INPUT}')"
    )


def _names(spec: CrewSpec) -> str:
    return ", ".join(spec.inputs) or "none"
