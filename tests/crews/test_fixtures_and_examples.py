"""The CrewAI fixtures and every example load, and their plans are what the files say."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from crews.plan.planner import MANAGER_STEP, Plan, final_step_ids, plan, ready_steps
from crews.spec.crewai.importer import import_project
from crews.spec.dump import dump_crew
from crews.spec.load import crew_json_schema, load_crew, load_crew_text

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "crewai"

Shape = list[tuple[str, str | None, list[str], list[str]]]


def shape(result: Plan) -> Shape:
    return [(s.id, s.role, s.depends_on, s.context) for s in result.steps]


EXAMPLE_PLANS: dict[str, Shape] = {
    "demo.yaml": [
        ("facts", "researcher", [], []),
        ("surprise", "explorer", [], []),
        ("paragraph", "writer", ["facts", "surprise"], ["facts", "surprise"]),
    ],
    "research.yaml": [
        ("research", "researcher", [], []),
        ("write", "writer", ["research"], ["research"]),
        ("review", "reviewer", ["write"], ["write"]),
    ],
    "fanout.yaml": [
        ("pros", "analyst", [], []),
        ("cons", "analyst", [], []),
        ("buyers", "analyst", [], []),
        ("summary", "editor", ["pros", "cons", "buyers"], ["pros", "cons", "buyers"]),
    ],
    "support.yaml": [("resolve", "agent", [], [])],
    "hierarchical.yaml": [
        (MANAGER_STEP, "lead", [], []),
        ("cost", None, [MANAGER_STEP], []),
        ("invite", "writer", ["cost"], ["cost"]),
    ],
}


def test_every_example_is_covered() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.yaml")) == sorted(EXAMPLE_PLANS)
    readme = (EXAMPLES / "README.md").read_text()
    assert all(f"`{name}`" in readme for name in EXAMPLE_PLANS)


@pytest.mark.parametrize("name", sorted(EXAMPLE_PLANS))
def test_example_plan(name: str) -> None:
    spec = load_crew(EXAMPLES / name)
    result = plan(spec, {})
    assert shape(result) == EXAMPLE_PLANS[name]
    assert load_crew_text(dump_crew(spec)) == spec


@pytest.mark.parametrize("name", sorted(EXAMPLE_PLANS))
def test_example_matches_the_published_schema(name: str) -> None:
    schema = crew_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(yaml.safe_load((EXAMPLES / name).read_text()), schema)


def test_research_example_reads_as_written() -> None:
    spec = load_crew(EXAMPLES / "research.yaml")
    result = plan(spec, {"topic": "tide pools"})
    assert result.step("research").description == "List three facts about tide pools."
    assert result.personas["researcher"].goal == "Find simple, true facts about tide pools."
    assert spec.roles["researcher"].scaling.min == 0
    assert spec.budgets.max_steps == 3
    assert final_step_ids(result) == ["review"]


def test_fanout_example_fans_out_then_in() -> None:
    result = plan(load_crew(EXAMPLES / "fanout.yaml"), {})
    assert [s.id for s in ready_steps(result, set())] == ["pros", "cons", "buyers"]
    assert [s.id for s in ready_steps(result, {"pros", "cons"})] == ["buyers"]
    assert [s.id for s in ready_steps(result, {"pros", "cons", "buyers"})] == ["summary"]
    assert result.step("summary").output_schema == {
        "type": "object",
        "properties": {"summary": {"type": "string"}, "worth_trying": {"type": "boolean"}},
        "required": ["summary", "worth_trying"],
    }
    assert final_step_ids(result) == ["summary"]


def test_hierarchical_example_has_typed_inputs() -> None:
    spec = load_crew(EXAMPLES / "hierarchical.yaml")
    result = plan(spec, {"guests": 20})
    assert result.step("cost").description == "Work out the food cost for 20 guests at 12.5 dollars each."
    assert spec.roles["accountant"].tools[0].name == "calculator"
    assert ready_steps(result, set()) == [result.step(MANAGER_STEP)]


FIXTURE_PLANS: dict[str, Shape] = {
    "outline_book": [
        ("research_topic", "researcher", [], []),
        ("generate_outline", "outliner", ["research_topic"], ["research_topic"]),
    ],
    "lead_score": [("evaluate_candidate", "hr_evaluation_agent", [], [])],
    "meeting_assistant": [("analyze_meeting", "meeting_analyzer", [], [])],
}
FIXTURE_INPUTS = {
    "outline_book": ["topic", "goal"],
    "lead_score": ["candidate_id", "name", "bio", "job_description", "additional_instructions"],
    "meeting_assistant": ["transcript"],
    "job_posting": ["company_domain", "company_description", "hiring_needs", "specific_benefits"],
}
JOB_POSTING_MAP = {
    "research_company_culture_task": "research_agent",
    "research_role_requirements_task": "research_agent",
    "draft_job_posting_task": "writer_agent",
    "review_and_edit_job_posting_task": "review_agent",
    "industry_analysis_task": "research_agent",
}


@pytest.mark.parametrize("name", sorted(FIXTURE_PLANS))
def test_crewai_fixture_plan(name: str) -> None:
    imported = import_project(FIXTURES / name)
    assert imported.warnings == ()
    spec = imported.spec
    assert spec.name == name
    assert list(spec.inputs) == FIXTURE_INPUTS[name]
    result = plan(spec, {key: f"<{key}>" for key in spec.inputs})
    assert shape(result) == FIXTURE_PLANS[name]


def test_job_posting_fixture_with_its_mapping_given() -> None:
    spec = import_project(FIXTURES / "job_posting", mapping=JOB_POSTING_MAP).spec
    assert list(spec.inputs) == FIXTURE_INPUTS["job_posting"]
    result = plan(spec, {key: key.upper() for key in spec.inputs})
    tasks = list(JOB_POSTING_MAP)
    assert shape(result) == [
        (task, JOB_POSTING_MAP[task], [tasks[i - 1]] if i else [], [tasks[i - 1]] if i else [])
        for i, task in enumerate(tasks)
    ]
    assert result.step("draft_job_posting_task").description.startswith(
        "Draft a job posting for the role described by the hiring manager: HIRING_NEEDS."
    )


def test_lead_score_prompt_is_interpolated_in_full() -> None:
    spec = import_project(FIXTURES / "lead_score").spec
    values = {key: f"<{key}>" for key in spec.inputs} | {"candidate_id": "c-42", "name": "Ada"}
    description = plan(spec, values).step("evaluate_candidate").description
    # a folded YAML scalar (">"), read as CrewAI reads it: lines joined, blank lines kept
    assert (
        "CANDIDATE BIO ------------- Candidate ID: c-42 Name: Ada Bio: <bio>\nJOB DESCRIPTION" in description
    )
    assert "candidate\u2019s skill match" in description  # the file's own typography survives
    assert "{" not in description


def test_role_texts_are_interpolated_too() -> None:
    spec = import_project(FIXTURES / "meeting_assistant").spec
    result = plan(spec, {"transcript": "We agreed to ship on Friday."})
    assert result.personas["meeting_analyzer"].goal.endswith("We agreed to ship on Friday.")
    assert result.personas["meeting_analyzer"].role == "Meeting Transcript Analysis Agent"
