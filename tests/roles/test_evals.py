"""Deterministic evals score a step's output; an attacker's pattern cannot hang the worker."""

from __future__ import annotations

import time

import pytest
from pydantic import ValidationError

from bus.contracts.evals import EvalSpec
from roles.step.evals import check


def spec(**fields: object) -> EvalSpec:
    return EvalSpec.model_validate(fields)


@pytest.mark.parametrize(
    ("fields", "output", "passed"),
    [
        ({"type": "contains", "text": "bees"}, "honey bees dance", True),
        ({"type": "contains", "text": "wasps"}, "honey bees dance", False),
        ({"type": "must_not_contain", "text": "As an AI"}, "As an AI, I think", False),
        ({"type": "must_not_contain", "text": "As an AI"}, "Bees dance.", True),
        ({"type": "length", "min": 5, "max": 10}, "1234567", True),
        ({"type": "length", "max": 3}, "1234567", False),
        ({"type": "regex", "pattern": r"^\d{4}-\d{2}$"}, "2026-12", True),
        ({"type": "regex", "pattern": r"^\d{4}$"}, "26", False),
        ({"type": "json_schema", "schema": {"type": "object", "required": ["a"]}}, '{"a": 1}', True),
        ({"type": "json_schema", "schema": {"type": "object", "required": ["a"]}}, '{"b": 1}', False),
        ({"type": "json_schema", "schema": {"type": "object"}}, "not json", False),
    ],
)
def test_each_deterministic_eval_scores_the_output(
    fields: dict[str, object], output: str, passed: bool
) -> None:
    score = check(spec(**fields), output, None)
    assert (score.passed, score.score) == (passed, 1.0 if passed else 0.0)
    assert score.name == fields["type"]


def test_a_catastrophic_pattern_times_out_and_scores_zero() -> None:
    started = time.monotonic()
    score = check(spec(type="regex", pattern=r"(a|aa)+$"), "a" * 35 + "!", None)
    assert not score.passed and "longer than" in score.detail
    assert time.monotonic() - started < 5  # bounded by the eval's own timeout, not by the pattern


def test_a_bad_pattern_scores_zero_with_the_reason() -> None:
    score = check(spec(type="regex", pattern="(unclosed"), "anything", None)
    assert not score.passed and score.detail.startswith("bad pattern")


def test_an_eval_without_what_its_type_needs_is_refused() -> None:
    with pytest.raises(ValidationError, match="needs 'rubric'"):
        spec(type="judge")
    with pytest.raises(ValidationError, match="extra"):
        spec(type="contains", text="x", command="rm -rf /")
