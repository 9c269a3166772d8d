"""Quality checks of a step's output, as a crew file declares them and as a worker records their scores.

A task declares ``evals``; the coordinator passes them in the step
(``StepWork.evals``); the worker scores the output after the step and records
the scores with the result (``StepResult.evals``); the coordinator fails the
job on a failed eval when the crew's ``eval_policy`` is ``fail`` (``flag``
only records it).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, model_validator

EvalType = Literal["json_schema", "regex", "contains", "must_not_contain", "length", "judge"]
EvalPolicy = Literal["flag", "fail"]

MAX_PATTERN = 500
MAX_RUBRIC = 4000


class EvalSpec(BaseModel):
    """One check of a task's output (crew file: ``tasks.<name>.evals``)."""

    model_config = ConfigDict(extra="forbid", validate_by_name=True, serialize_by_alias=True)

    type: EvalType
    name: str | None = Field(None, max_length=64, description="How scores name it; default: the type.")
    schema_: dict[str, JsonValue] | None = Field(None, alias="schema", description="json_schema: the schema.")
    pattern: str | None = Field(None, max_length=MAX_PATTERN, description="regex: must match somewhere.")
    text: str | None = Field(None, max_length=MAX_PATTERN, description="contains / must_not_contain.")
    min: int | None = Field(None, ge=0, description="length: fewest characters.")
    max: int | None = Field(None, ge=0, description="length: most characters.")
    rubric: str | None = Field(None, max_length=MAX_RUBRIC, description="judge: what a good answer does.")
    threshold: float = Field(0.5, ge=0, le=1, description="judge: the lowest passing score (0..1).")

    @model_validator(mode="after")
    def _fields_of_its_type(self) -> EvalSpec:
        needed = {
            "json_schema": self.schema_ is not None,
            "regex": self.pattern is not None,
            "contains": self.text is not None,
            "must_not_contain": self.text is not None,
            "length": self.min is not None or self.max is not None,
            "judge": bool(self.rubric),
        }
        if not needed[self.type]:
            field = {"json_schema": "schema", "regex": "pattern", "contains": "text",
                     "must_not_contain": "text", "length": "min or max", "judge": "rubric"}[self.type]  # fmt: skip
            raise ValueError(f"an eval of type {self.type!r} needs {field!r}")
        return self

    @property
    def label(self) -> str:
        return self.name or self.type


class EvalScore(BaseModel):
    """The score of one eval on one step's output."""

    name: str
    type: EvalType
    score: float = Field(ge=0, le=1)
    passed: bool
    detail: str = ""
