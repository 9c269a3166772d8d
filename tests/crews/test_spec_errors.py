"""Bad crew files: each mistake gets its own message, at the right line, column and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from crews.errors import CrewSpecError
from crews.spec.load import load_crew, load_crew_text
from crews.spec.models import CrewFileError, CrewSpec, CrewSpecProblems

BASE = """\
name: demo
inputs:
  topic: {}
roles:
  researcher:
    role: Researcher
    goal: Find facts about {topic}
  writer:
    role: Writer
    goal: Write well
tasks:
  research:
    description: Research {topic}
    expected_output: Facts
    agent: researcher
  write:
    description: Write about {topic}
    expected_output: A paragraph
    agent: writer
"""


def edit(old: str, new: str, text: str = BASE) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


WRITER_GOAL = "    goal: Write well\n"
WRITE_AGENT = "    agent: writer\n"
FORBIDDEN = (
    "a crew file cannot set '{field}': an outside agent's address and credentials are declared by the "
    "operator (CREWS_A2A_AGENTS on the role workers, or the chart's a2aAgents), and the role names it "
    "with `engine: a2a` and `agent: <name>`"
)
NATS_NAMES = "use only letters, digits, '_' and '-' (it becomes part of NATS subjects)"

# name: (file text, [(line, column, field, message), ...])
CASES: dict[str, tuple[str, list[tuple[int, int, str, str]]]] = {
    "empty file": ("", [(1, 1, "", "the file is empty: a crew file needs name, roles and tasks")]),
    "only comments": (
        "# nothing here\n",
        [(1, 1, "", "the file is empty: a crew file needs name, roles and tasks")],
    ),
    "a list": (
        "- researcher\n- writer\n",
        [(1, 1, "", "a crew file must be a mapping of name, roles and tasks, not a list")],
    ),
    "a single value": (
        "just some text\n",
        [(1, 1, "", "a crew file must be a mapping of name, roles and tasks, not a single value")],
    ),
    "YAML syntax": (edit("roles:\n", "roles: [\n"), [(6, 9, "", "invalid YAML: expected ',' or ']', but got ':'")]),
    "tab indentation": (
        edit(WRITE_AGENT, "\tagent: writer\n"),
        [(19, 1, "", "invalid YAML: found character '\\t' that cannot start any token")],
    ),
    "two documents": (
        BASE + "---\nname: other\n",
        [(20, 1, "", "invalid YAML: a crew file holds one YAML document; remove the extra '---'")],
    ),
    "duplicate key": (
        edit("  writer:\n    role: Writer", "  researcher:\n    role: Writer"),
        [(8, 3, "roles.researcher", "duplicate key 'researcher' (first written on line 5)")],
    ),
    "key that is not text": (
        edit("  topic: {}\n", "  ? [a, b]\n  : {}\n"),
        [(3, 5, "inputs", "a key must be plain text")],
    ),
    "CrewAI agents.yaml": (
        "researcher:\n  role: R\n  goal: G\n  backstory: B\n",
        [
            (
                1,
                1,
                "",
                "this looks like a CrewAI agents.yaml, not a crew file: read the project with `crews import <dir>`",
            )
        ],
    ),
    "unknown top-level field": (
        edit("tasks:\n", "taks:\n"),
        [(11, 1, "taks", "unknown field 'taks'; did you mean 'tasks'?")],
    ),
    "unknown task field": (
        edit(WRITE_AGENT, "    agnet: writer\n"),
        [(19, 5, "tasks.write.agnet", "unknown field 'agnet'; did you mean 'agent'?")],
    ),
    "unknown role field": (
        edit(WRITER_GOAL, "    gaol: Write well\n"),
        [(10, 5, "roles.writer.gaol", "unknown field 'gaol'; did you mean 'goal'?")],
    ),
    "unknown field, nothing close": (
        edit(WRITER_GOAL, WRITER_GOAL + "    colour: blue\n"),
        [
            (
                11,
                5,
                "roles.writer.colour",
                "unknown field 'colour' (expected one of: role, goal, backstory, llm, engine, agent, tools, "
                "allow_delegation, max_iter, max_execution_time, max_rpm, scaling)",
            )
        ],
    ),
    "missing field": (
        edit("    expected_output: A paragraph\n", ""),
        [(16, 3, "tasks.write.expected_output", "missing required field 'expected_output'")],
    ),
    "unknown agent": (
        edit(WRITE_AGENT, "    agent: writter\n"),
        [(19, 12, "tasks.write.agent", "unknown agent 'writter'; did you mean 'writer'?")],
    ),
    "task with no agent": (
        edit(WRITE_AGENT, ""),
        [
            (
                16,
                3,
                "tasks.write.agent",
                "task has no agent: add `agent: <one of researcher, writer>` (only a hierarchical crew may leave it out)",
            )
        ],
    ),
    "unknown context task": (
        edit(WRITE_AGENT, WRITE_AGENT + "    context: [reserch]\n"),
        [(20, 15, "tasks.write.context[0]", "unknown task 'reserch'; did you mean 'research'?")],
    ),
    "own output as context": (
        edit(WRITE_AGENT, WRITE_AGENT + "    context: [write]\n"),
        [(20, 15, "tasks.write.context[0]", "a task cannot use its own output as context")],
    ),
    "later task as context in a sequential crew": (
        edit("    agent: researcher\n", "    agent: researcher\n    context: [write]\n"),
        [
            (
                16,
                15,
                "tasks.research.context[0]",
                "'write' comes later in the file: in a sequential crew a task can only use the outputs of "
                "earlier tasks (move 'research' below 'write', or use process: parallel)",
            )
        ],
    ),
    "dependency cycle": (
        edit(
            WRITE_AGENT,
            WRITE_AGENT + "    context: [research]\n",
            edit(
                "    agent: researcher\n",
                "    agent: researcher\n    context: [write]\n",
                edit("name: demo\n", "name: demo\nprocess: parallel\n"),
            ),
        ),
        [
            (
                22,
                15,
                "tasks.write.context[0]",
                "dependency cycle: research -> write -> research (each task needs the output of the next)",
            )
        ],
    ),
    "undeclared input, close to a declared one": (
        edit("Write about {topic}", "Write about {topc}"),
        [(17, 18, "tasks.write.description", "{topc} is not a declared input; did you mean {topic}?")],
    ),
    "undeclared input, no inputs at all": (
        edit("inputs:\n  topic: {}\n", ""),
        [
            (5, 11, "roles.researcher.goal", "{topic} is not a declared input: declare it under `inputs:`"),
            (11, 18, "tasks.research.description", "{topic} is not a declared input: declare it under `inputs:`"),
            (15, 18, "tasks.write.description", "{topic} is not a declared input: declare it under `inputs:`"),
        ],
    ),
    "role name that is not a NATS token": (
        edit("  writer:\n", "  writer.bot:\n"),
        [(8, 3, 'roles["writer.bot"]', f"'writer.bot' cannot be a role name: {NATS_NAMES}")],
    ),
    "crew name with a space": (
        edit("name: demo", "name: my crew"),
        [(1, 7, "name", f"'my crew' cannot be a crew name: {NATS_NAMES}")],
    ),
    "task name starting with '_'": (
        edit("  write:\n", "  _write:\n"),
        [
            (
                16,
                3,
                "tasks._write",
                "'_write' cannot be a task name: start with a letter or digit and use only letters, digits, "
                "'_' and '-' (it becomes the step id)",
            )
        ],
    ),
    "engine typo": (
        edit(WRITER_GOAL, WRITER_GOAL + "    engine: crewia\n"),
        [(11, 13, "roles.writer.engine", "'crewia' is not one of native, crewai, adk, a2a; did you mean 'crewai'?")],
    ),
    "a2a role without an agent": (
        edit(WRITER_GOAL, WRITER_GOAL + "    engine: a2a\n"),
        [
            (
                11,
                13,
                "roles.writer.engine",
                "engine a2a needs `agent: <name>`, the name of an outside agent the operator declared "
                "(CREWS_A2A_AGENTS on the role workers)",
            )
        ],
    ),
    "agent on a native role": (
        edit(WRITER_GOAL, WRITER_GOAL + "    agent: translator\n"),
        [(11, 5, "roles.writer.agent", "agent is only used with engine: a2a")],
    ),
    "url in a crew file": (
        edit(WRITER_GOAL, WRITER_GOAL + "    engine: a2a\n    url: http://169.254.169.254/latest\n"),
        [(12, 5, "roles.writer.url", FORBIDDEN.format(field="url"))],
    ),
    "headers_from in a crew file": (
        edit(WRITER_GOAL, WRITER_GOAL + "    engine: a2a\n    agent: x\n    headers_from: CREWS_REDIS_URL\n"),
        [(13, 5, "roles.writer.headers_from", FORBIDDEN.format(field="headers_from"))],
    ),
    "max_iter as text": (
        edit(WRITER_GOAL, WRITER_GOAL + "    max_iter: ten\n"),
        [(11, 15, "roles.writer.max_iter", "expected a whole number, got the text 'ten'")],
    ),
    "max_iter zero": (
        edit(WRITER_GOAL, WRITER_GOAL + "    max_iter: 0\n"),
        [(11, 15, "roles.writer.max_iter", "must be at least 1, got the number 0")],
    ),
    "scaling min above max": (
        edit(WRITER_GOAL, WRITER_GOAL + "    scaling: {min: 4, max: 2}\n"),
        [(11, 20, "roles.writer.scaling.min", "min (4) is more than max (2)")],
    ),
    "approval typo": (
        edit(WRITER_GOAL, WRITER_GOAL + "    tools:\n      - name: send\n        approval: requird\n"),
        [
            (
                13,
                19,
                "roles.writer.tools[0].approval",
                "'requird' is not one of none, required; did you mean 'required'?",
            )
        ],
    ),
    "process typo": (
        edit("name: demo\n", "name: demo\nprocess: paralel\n"),
        [(2, 10, "process", "'paralel' is not one of sequential, hierarchical, parallel; did you mean 'parallel'?")],
    ),
    "hierarchical without a manager": (
        edit("name: demo\n", "name: demo\nprocess: hierarchical\n"),
        [
            (
                2,
                10,
                "process",
                "a hierarchical crew needs a manager: set `manager: <role>` or `manager_llm: <model>`",
            )
        ],
    ),
    "unknown manager role": (
        edit("name: demo\n", "name: demo\nprocess: hierarchical\nmanager: writr\n"),
        [(3, 10, "manager", "unknown role 'writr'; did you mean 'writer'?")],
    ),
    "manager in a sequential crew": (
        edit("name: demo\n", "name: demo\nmanager: writer\n"),
        [(2, 1, "manager", "manager is only used with process: hierarchical")],
    ),
    "input default of the wrong type": (
        edit("  topic: {}\n", "  topic:\n    type: integer\n    default: many\n"),
        [(5, 14, "inputs.topic.default", "the default must be a whole number (type: integer), got the text 'many'")],
    ),
    "human_input as text": (
        edit(WRITE_AGENT, WRITE_AGENT + "    human_input: sometimes\n"),
        [(20, 18, "tasks.write.human_input", "expected true or false, got the text 'sometimes'")],
    ),
    "output_schema that is not a JSON schema": (
        edit(WRITE_AGENT, WRITE_AGENT + "    output_schema: {type: thing}\n"),
        [
            (
                20,
                20,
                "tasks.write.output_schema",
                "not a valid JSON schema at type: 'thing' is not valid under any of the given schemas",
            )
        ],
    ),
    "max_steps below the number of tasks": (
        BASE + "budgets:\n  max_steps: 1\n",
        [(21, 14, "budgets.max_steps", "max_steps is 1 but the crew has 2 tasks")],
    ),
    "roles as a list": (
        "name: demo\nroles: [researcher]\ntasks:\n  a:\n    description: x\n    expected_output: y\n"
        "    agent: researcher\n",
        [(2, 8, "roles", "expected a mapping, got a list")],
    ),
    "no tasks": (
        edit("tasks:\n", "tasks: {}\nunused:\n"),
        [
            (11, 8, "tasks", "must not be empty"),
            (12, 1, "unused", "unknown field 'unused' (expected one of: name, description, process, manager, "
             "manager_llm, inputs, roles, tasks, budgets, eval_policy, memory)"),
        ],
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_bad_file(case: str) -> None:
    text, expected = CASES[case]
    with pytest.raises(CrewFileError) as caught:
        load_crew_text(text, "crews/demo.yaml")
    error = caught.value
    assert [(i.line, i.column, i.field, i.message) for i in error.issues] == expected
    assert all(i.file == "crews/demo.yaml" for i in error.issues)
    assert error.__cause__ is None  # the user sees the message, not pydantic's or PyYAML's traceback


def test_there_are_at_least_twenty_cases() -> None:
    assert len(CASES) >= 20


def test_message_names_file_line_column_and_field() -> None:
    with pytest.raises(CrewFileError) as caught:
        load_crew_text(edit(WRITE_AGENT, "    agent: writter\n"), "crews/demo.yaml")
    assert (
        str(caught.value)
        == "crews/demo.yaml:19:12: tasks.write.agent: unknown agent 'writter'; did you mean 'writer'?"
    )


def test_every_problem_is_reported_at_once() -> None:
    text = edit("Write about {topic}", "Write about {topc}", edit(WRITE_AGENT, "    agent: writter\n"))
    with pytest.raises(CrewFileError) as caught:
        load_crew_text(text)
    assert [i.field for i in caught.value.issues] == ["tasks.write.description", "tasks.write.agent"]


def test_file_errors_are_crew_spec_errors(tmp_path: Path) -> None:
    with pytest.raises(CrewSpecError, match=r"missing\.yaml:1:1: the file does not exist"):
        load_crew(tmp_path / "missing.yaml")
    with pytest.raises(CrewSpecError, match="is a directory; to read a CrewAI project use `crews import"):
        load_crew(tmp_path)
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(CrewSpecError, match="is not UTF-8 text"):
        load_crew(bad)


def test_a_crew_built_in_code_gets_the_same_checks() -> None:
    data = {
        "name": "demo",
        "roles": {"writer": {"role": "Writer", "goal": "Write"}},
        "tasks": {"write": {"description": "Write", "expected_output": "Text", "agent": "writter"}},
    }
    with pytest.raises(CrewSpecProblems) as caught:
        CrewSpec.model_validate(data)
    assert str(caught.value) == "tasks.write.agent: unknown agent 'writter'; did you mean 'writer'?"


def test_alias_inside_itself_is_refused() -> None:
    with pytest.raises(CrewFileError) as caught:
        load_crew_text("name: demo\nroles: &r\n  a: *r\n")
    assert caught.value.issues[0].message == "an alias cannot refer to a collection inside itself"


def test_yaml_keys_stay_text_and_values_get_a_hint() -> None:
    text = edit("  writer:\n", "  on:\n")
    spec = load_crew_text(text.replace("agent: writer", 'agent: "on"'))
    assert list(spec.roles) == ["researcher", "on"]
    with pytest.raises(CrewFileError) as caught:
        load_crew_text(text.replace("agent: writer", "agent: on"))
    assert caught.value.issues[0].message == "expected text, got true (put it in quotes to make it text)"


def test_merge_keys_may_be_overridden_but_written_keys_not_repeated() -> None:
    text = edit(
        "  writer:\n    role: Writer\n    goal: Write well\n",
        "  writer: &writer\n    role: Writer\n    goal: Write well\n  editor:\n    <<: *writer\n    goal: Edit\n",
    )
    text = text.replace("    agent: writer\n", "    agent: editor\n")
    spec = load_crew_text(text)
    assert (spec.roles["editor"].role, spec.roles["editor"].goal) == ("Writer", "Edit")
    twice = text.replace("    goal: Edit\n", "    goal: Edit\n    goal: Check\n")
    with pytest.raises(CrewFileError) as caught:
        load_crew_text(twice)
    assert [(i.line, i.field, i.message) for i in caught.value.issues] == [
        (14, "roles.editor.goal", "duplicate key 'goal' (first written on line 13)")
    ]
