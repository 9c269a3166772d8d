"""CrewAI projects as their authors wrote them: the YAML pair, crew.py read with ast, and what to do when the mapping is missing."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from crews.errors import CrewSpecError
from crews.plan.planner import plan
from crews.spec.crewai.importer import find_project, import_project, load_crewai_pair, load_crewai_texts
from crews.spec.dump import dump_crew
from crews.spec.load import load_crew_text
from crews.spec.models import MANAGER_ROLE, CrewFileError

FIXTURES = Path(__file__).resolve().parent / "fixtures"
JOB_POSTING = FIXTURES / "crewai" / "job_posting"
JOB_POSTING_PROJECT = FIXTURES / "job_posting_project"

AGENTS = """\
researcher:
  role: Researcher
  goal: Research {topic}
  backstory: Curious.
  verbose: true
writer:
  role: Writer
  goal: Write
  backstory: Clear.
"""
TASKS = """\
research:
  description: Research {topic} for {audience}
  expected_output: Notes
  agent: researcher
  async_execution: true
write:
  description: Write it up
  expected_output: A paragraph
  agent: writer
"""


def issues(error: CrewFileError) -> list[tuple[str, int, int, str, str]]:
    return [(Path(i.file).name, i.line, i.column, i.field, i.message) for i in error.issues]


def test_missing_mapping_says_exactly_what_to_add() -> None:
    with pytest.raises(CrewFileError) as caught:
        import_project(JOB_POSTING)
    agents = "research_agent, writer_agent, review_agent"
    expected = [
        (
            "tasks.yaml",
            line,
            1,
            f"{task}.agent",
            f"task has no agent: add `agent: <one of {agents}>` under it in tasks.yaml, or pass --map {task}=<agent>",
        )
        for line, task in [
            (1, "research_company_culture_task"),
            (12, "research_role_requirements_task"),
            (22, "draft_job_posting_task"),
            (34, "review_and_edit_job_posting_task"),
            (44, "industry_analysis_task"),
        ]
    ]
    assert issues(caught.value) == expected


def test_mapping_read_from_crew_py() -> None:
    imported = import_project(JOB_POSTING_PROJECT)
    spec = imported.spec
    assert [(w.field, w.message) for w in imported.warnings] == [
        (
            "writer_agent.tools",
            "tool 'FileReadTool' is made with arguments in crew.py: crews makes it with its defaults "
            "(crewai_tools:FileReadTool); give the project a tool class whose defaults are right",
        ),
        ("review_agent.tools", imported.warnings[1].message),
        ("research_agent", "runs on engine: crewai (CrewAI's own loop), for its CrewAI tools"),
        ("writer_agent", "runs on engine: crewai (CrewAI's own loop), for its CrewAI tools"),
        ("review_agent", "runs on engine: crewai (CrewAI's own loop), for its CrewAI tools"),
    ]
    assert spec.name == "job_posting_project"
    assert spec.process == "sequential"
    # crew.py's @task order is the order CrewAI runs them in
    assert [(k, t.agent) for k, t in spec.tasks.items()] == [
        ("research_company_culture_task", "research_agent"),
        ("research_role_requirements_task", "research_agent"),
        ("industry_analysis_task", "research_agent"),
        ("draft_job_posting_task", "writer_agent"),
        ("review_and_edit_job_posting_task", "review_agent"),
    ]
    assert spec.tasks["draft_job_posting_task"].context == [
        "research_company_culture_task",
        "research_role_requirements_task",
    ]
    assert spec.tasks["review_and_edit_job_posting_task"].output_file == "job_posting.md"
    # crewai_tools classes, named by import path, run by CrewAI's loop
    assert [(t.name, t.crewai) for t in spec.roles["research_agent"].tools] == [
        ("website_search_tool", "crewai_tools:WebsiteSearchTool"),
        ("serper_dev_tool", "crewai_tools:SerperDevTool"),
    ]
    assert [t.name for t in spec.roles["review_agent"].tools] == ["file_read_tool"]
    assert {role.engine for role in spec.roles.values()} == {"crewai"}


def test_map_option_wins_over_crew_py() -> None:
    spec = import_project(JOB_POSTING_PROJECT, mapping={"industry_analysis_task": "writer_agent"}).spec
    assert spec.tasks["industry_analysis_task"].agent == "writer_agent"
    assert spec.tasks["research_company_culture_task"].agent == "research_agent"


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        (
            {"industry_task": "research_agent"},
            "cannot map task 'industry_task' to 'research_agent': unknown task 'industry_task'; "
            "did you mean 'industry_analysis_task'?",
        ),
        (
            {"industry_analysis_task": "researcher"},
            "cannot map task 'industry_analysis_task' to 'researcher': unknown agent 'researcher'; "
            "did you mean 'research_agent'?",
        ),
    ],
)
def test_bad_mapping(mapping: dict[str, str], message: str) -> None:
    with pytest.raises(CrewSpecError) as caught:
        import_project(JOB_POSTING, mapping=mapping)
    assert str(caught.value) == message


def test_crewai_only_keys_are_warned_about_and_inputs_inferred() -> None:
    imported = load_crewai_texts(AGENTS, TASKS, name="demo")
    assert [(w.file, w.line, w.column, w.field, w.message) for w in imported.warnings] == [
        ("agents.yaml", 5, 3, "researcher.verbose", "'verbose' has no crews equivalent yet: left out"),
        (
            "tasks.yaml",
            5,
            3,
            "research.async_execution",
            "'async_execution' has no crews equivalent yet: use `process: parallel` to run independent tasks at once",
        ),
    ]
    assert list(imported.spec.inputs) == ["topic", "audience"]
    assert all(i.required for i in imported.spec.inputs.values())


@pytest.mark.parametrize(
    ("agents", "tasks", "expected"),
    [
        (
            AGENTS.replace("  goal: Write\n", "  gaol: Write\n"),
            TASKS,
            ("agents.yaml", 8, 3, "writer.gaol", "unknown field 'gaol'; did you mean 'goal'?"),
        ),
        (
            AGENTS + "  max_iter: many\n",
            TASKS,
            ("agents.yaml", 10, 13, "writer.max_iter", "expected a whole number, got the text 'many'"),
        ),
        (
            AGENTS,
            TASKS.replace("agent: writer", "agent: writter"),
            ("tasks.yaml", 9, 10, "write.agent", "unknown agent 'writter'; did you mean 'writer'?"),
        ),
        (
            AGENTS,
            TASKS + "  context: [reserch]\n",
            ("tasks.yaml", 10, 13, "write.context[0]", "unknown task 'reserch'; did you mean 'research'?"),
        ),
        (
            "",
            TASKS,
            ("agents.yaml", 1, 1, "", "the file is empty: a CrewAI agents.yaml needs agents, each with role, goal and backstory"),
        ),
        (
            AGENTS,
            "- research\n",
            ("tasks.yaml", 1, 1, "", "a CrewAI tasks.yaml must be a mapping of tasks, each with description and expected_output, not a list"),
        ),
    ],
)  # fmt: skip
def test_mistakes_in_crewai_files_point_into_them(
    agents: str, tasks: str, expected: tuple[object, ...]
) -> None:
    with pytest.raises(CrewFileError) as caught:
        load_crewai_texts(agents, tasks)
    assert issues(caught.value) == [expected]


def test_agent_max_tokens_becomes_the_llm_limit() -> None:
    agents = AGENTS + "  llm: small-model\n  max_tokens: 256\n"
    spec = load_crewai_texts(agents, TASKS).spec
    llm = spec.roles["writer"].llm
    assert llm is not None
    assert (llm.model, llm.max_tokens) == ("small-model", 256)


def _project(root: Path, crew_py: str, agents: str = AGENTS, tasks: str = TASKS) -> Path:
    config = root / "src" / "demo" / "config"
    config.mkdir(parents=True)
    (config / "agents.yaml").write_text(agents)
    (config / "tasks.yaml").write_text(tasks)
    (config.parent / "crew.py").write_text(dedent(crew_py))
    return root


HIERARCHICAL_CREW_PY = """\
    raise SystemExit("crews must never run this file")
    from crewai import LLM, Agent, Crew, Process, Task
    from crewai.project import CrewBase, agent, crew, task


    @CrewBase
    class Demo:
        @agent
        def researcher(self) -> Agent:
            return Agent(config=self.agents_config["researcher"], allow_delegation=True, max_iter=4)

        @task
        def research(self) -> Task:
            return Task(config=self.tasks_config["research"], human_input=True)

        @crew
        def crew(self) -> Crew:
            return Crew(agents=self.agents, tasks=self.tasks, process=Process.hierarchical,
                        manager_llm=LLM(model="big-model"))
"""


def test_crew_py_process_and_manager_llm(tmp_path: Path) -> None:
    imported = import_project(_project(tmp_path / "demo-project", HIERARCHICAL_CREW_PY))
    spec = imported.spec
    assert (spec.name, spec.process, spec.manager, spec.manager_llm) == (
        "demo-project",
        "hierarchical",
        None,
        spec.manager_llm,
    )
    assert spec.manager_llm is not None and spec.manager_llm.model == "big-model"
    assert list(spec.tasks) == ["research"]  # crew.py runs only this task
    assert spec.tasks["research"].human_input is True
    assert (spec.roles["researcher"].allow_delegation, spec.roles["researcher"].max_iter) == (True, 4)
    assert MANAGER_ROLE in spec.all_roles()
    assert [(w.field, w.message) for w in imported.warnings] == [
        ("researcher.verbose", "'verbose' has no crews equivalent yet: left out"),
        ("research.async_execution", imported.warnings[1].message),
        ("write", "task 'write' is not used by crew.py: left out, as CrewAI does"),
        ("researcher", "runs on engine: crewai (CrewAI's own loop), for task 'research' (human_input)"),
    ]
    assert spec.roles["researcher"].engine == "crewai"  # CrewAI's loop asks a person (human_input)
    assert [s.id for s in plan(spec, {"topic": "t", "audience": "a"}).steps] == ["_manager", "research"]


def test_crew_py_manager_agent(tmp_path: Path) -> None:
    crew_py = HIERARCHICAL_CREW_PY.replace(
        'manager_llm=LLM(model="big-model")', "manager_agent=self.writer()"
    ).replace(
        "        @task\n",
        '        @agent\n        def writer(self):\n            return Agent(config=self.agents_config["writer"])\n\n        @task\n',
    )
    spec = import_project(_project(tmp_path / "p", crew_py)).spec
    assert (spec.process, spec.manager, spec.manager_llm) == ("hierarchical", "writer", None)


def test_crew_py_task_without_agent_says_where_to_add_it(tmp_path: Path) -> None:
    crew_py = HIERARCHICAL_CREW_PY.replace("process=Process.hierarchical,", "process=Process.sequential,")
    tasks = TASKS.replace("  agent: researcher\n", "")
    with pytest.raises(CrewFileError) as caught:
        import_project(_project(tmp_path / "p", crew_py, tasks=tasks))
    assert issues(caught.value) == [
        (
            "tasks.yaml",
            1,
            1,
            "research.agent",
            "task has no agent: add `agent: <one of researcher, writer>` under it in tasks.yaml, "
            "or `agent=self.<agent>()` to its Task in crew.py, or pass --map research=<agent>",
        )
    ]


def test_crew_py_reading_an_unknown_task_config(tmp_path: Path) -> None:
    crew_py = HIERARCHICAL_CREW_PY.replace('self.tasks_config["research"]', 'self.tasks_config["reserch"]')
    with pytest.raises(CrewFileError) as caught:
        import_project(_project(tmp_path / "p", crew_py))
    assert issues(caught.value) == [
        (
            "crew.py",
            13,
            5,
            "",
            "task 'research' reads tasks_config['reserch'], which tasks.yaml does not define; did you mean 'research'?",
        )
    ]


def test_crew_py_that_is_not_python(tmp_path: Path) -> None:
    with pytest.raises(CrewFileError) as caught:
        import_project(_project(tmp_path / "p", "def crew(:\n"))
    assert issues(caught.value) == [("crew.py", 1, 10, "", "not valid Python: invalid syntax")]


def test_project_layouts(tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "agents.yaml").write_text(AGENTS)
    (flat / "tasks.yaml").write_text(TASKS)
    assert find_project(flat).agents == flat / "agents.yaml"
    assert find_project(flat).crew_py is None
    assert (
        find_project(JOB_POSTING_PROJECT).crew_py == JOB_POSTING_PROJECT / "src" / "job_posting" / "crew.py"
    )
    with pytest.raises(CrewSpecError) as caught:
        find_project(tmp_path)
    assert str(caught.value) == (
        f"{tmp_path}: no CrewAI project here: expected config/agents.yaml and config/tasks.yaml "
        "(or agents.yaml and tasks.yaml, or src/<package>/config/...)"
    )
    with pytest.raises(CrewSpecError, match="no such directory"):
        find_project(tmp_path / "nowhere")


def test_pair_loaded_directly_and_written_as_a_crew_file() -> None:
    imported = load_crewai_pair(
        FIXTURES / "crewai" / "outline_book" / "agents.yaml",
        FIXTURES / "crewai" / "outline_book" / "tasks.yaml",
    )
    spec = imported.spec
    assert spec.name == "outline_book"
    assert load_crew_text(dump_crew(spec)) == spec


def test_unknown_keys_in_both_files_are_reported_at_once() -> None:
    agents = AGENTS.replace("  goal: Write\n", "  gaol: Write\n")
    tasks = TASKS.replace("  expected_output: Notes\n", "  expected: Notes\n")
    with pytest.raises(CrewFileError) as caught:
        load_crewai_texts(agents, tasks)
    assert [(i.file, i.line, i.field) for i in caught.value.issues] == [
        ("agents.yaml", 8, "writer.gaol"),
        ("tasks.yaml", 3, "research.expected"),
    ]
    assert caught.value.issues[1].message == "unknown field 'expected'; did you mean 'expected_output'?"


def test_pair_in_a_config_folder_is_named_after_the_project() -> None:
    config = JOB_POSTING_PROJECT / "src" / "job_posting" / "config"
    spec = load_crewai_pair(config / "agents.yaml", config / "tasks.yaml", mapping=dict.fromkeys(
        ["research_company_culture_task", "research_role_requirements_task", "draft_job_posting_task",
         "review_and_edit_job_posting_task", "industry_analysis_task"], "research_agent")).spec  # fmt: skip
    assert spec.name == "job_posting"


def test_keys_crews_honours_only_in_part_are_warned_about_by_name() -> None:
    agents = AGENTS.replace("  verbose: true\n", "  allow_delegation: true\n")
    tasks = TASKS.replace(
        "  async_execution: true\n",
        "  human_input: true\n  output_file: notes.md\n  guardrail: Cite a source.\n",
    )
    imported = load_crewai_texts(agents, tasks, name="demo")
    warned = {w.field: w.message for w in imported.warnings}
    assert set(warned) == {"researcher.allow_delegation", "research.output_file", "researcher"}
    # guardrail and human_input are honoured by CrewAI's loop: the role runs on it, and says so
    assert warned["researcher"] == (
        "runs on engine: crewai (CrewAI's own loop), for task 'research' (guardrail, human_input)"
    )
    assert imported.spec.roles["researcher"].engine == "crewai"
    assert imported.spec.roles["writer"].engine == "native"
    assert imported.spec.tasks["research"].guardrail == "Cite a source."


def test_an_empty_expected_output_is_accepted_as_crewai_accepts_it() -> None:
    imported = load_crewai_texts(
        AGENTS, TASKS.replace("expected_output: Notes", 'expected_output: ""'), name="demo"
    )
    assert imported.spec.tasks["research"].expected_output == ""
    with pytest.raises(CrewFileError, match="expected_output"):
        load_crewai_texts(AGENTS, TASKS.replace("  expected_output: Notes\n", ""), name="demo")


CUSTOM_CREW_PY = """\
    from crewai import Agent, Crew, Task
    from crewai.project import CrewBase, agent, crew, task
    from crewai_tools import SerperDevTool
    from langchain_community.tools import DuckDuckGoSearchRun

    from .guardrails import short_enough
    from .models import Report
    from .tools.custom_tool import MyCustomTool, lookup_price


    def in_crew_py(output):
        return True, output


    @CrewBase
    class Shop:
        @agent
        def researcher(self) -> Agent:
            return Agent(config=self.agents_config["researcher"],
                         tools=[MyCustomTool(), lookup_price, SerperDevTool(), DuckDuckGoSearchRun()])

        @task
        def research(self) -> Task:
            return Task(config=self.tasks_config["research"], agent=self.researcher(),
                        guardrails=[short_enough, "Cite a source."], output_pydantic=Report)

        @task
        def write(self) -> Task:
            return Task(config=self.tasks_config["write"], agent=self.writer(), guardrail=in_crew_py)
"""


def test_crew_py_custom_tools_guardrails_and_output_model_become_references(tmp_path: Path) -> None:
    imported = import_project(_project(tmp_path / "shop", CUSTOM_CREW_PY))
    spec = imported.spec
    tools = [(t.name, t.crewai) for t in spec.roles["researcher"].tools]
    assert tools == [
        ("my_custom_tool", "project:demo.tools.custom_tool:MyCustomTool"),
        ("lookup_price", "project:demo.tools.custom_tool:lookup_price"),
        ("serper_dev_tool", "crewai_tools:SerperDevTool"),
        ("DuckDuckGoSearchRun", None),  # not the project's: named as a crews tool, and warned about
    ]
    research = spec.tasks["research"]
    assert [g if isinstance(g, str) else g.function for g in research.guardrails] == [
        "project:demo.guardrails:short_enough",
        "Cite a source.",
    ]
    assert research.output_pydantic == "project:demo.models:Report"
    assert spec.tasks["write"].guardrails[0].function == "project:demo.crew:in_crew_py"  # type: ignore[union-attr]
    assert (spec.roles["researcher"].engine, spec.roles["writer"].engine) == ("crewai", "crewai")
    warned = {w.field: w.message for w in imported.warnings}
    assert "'DuckDuckGoSearchRun' is not the project's code" in warned["researcher.tools"]
    assert "task 'research' (guardrails, output_pydantic)" in warned["researcher"]
    # the crew file carries references, never code, and loads as it was written
    assert load_crew_text(dump_crew(spec), "shop.yaml") == spec


def test_a_guardrail_that_is_not_the_projects_code_is_refused_by_name(tmp_path: Path) -> None:
    crew_py = CUSTOM_CREW_PY.replace("guardrail=in_crew_py", "guardrail=lambda output: (True, output)")
    with pytest.raises(CrewFileError, match=r"write\.guardrail: 'guardrail': 'lambda output"):
        import_project(_project(tmp_path / "shop", crew_py))


def test_crewai_only_keys_on_another_engine_are_refused_by_name() -> None:
    text = """\
name: c
roles:
  r: {role: R, goal: G, tools: [{name: t, crewai: "project:shop.tools:T"}]}
tasks:
  a: {description: D, expected_output: E, agent: r, human_input: true, output_pydantic: "project:shop.m:M"}
"""
    with pytest.raises(CrewFileError) as caught:
        load_crew_text(text, "c.yaml")
    messages = {i.field: i.message for i in caught.value.issues}
    assert "only engine: crewai runs: set `engine: crewai`" in messages["roles.r.tools[0].crewai"]
    assert messages["tasks.a.human_input"].startswith("'human_input' is honoured only on engine: crewai")
    assert "output_pydantic" in messages["tasks.a.output_pydantic"]
    with pytest.raises(CrewFileError, match=r"project:<package>\.<module>:<name>"):
        load_crew_text(
            text.replace("project:shop.m:M", "shop.m.M").replace("tools: [", "engine: crewai, tools: ["),
            "c.yaml",
        )
