"""``crews validate``, ``crews import`` and ``crews schema`` from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import typer
from typer.testing import CliRunner

from crews.cli.spec import register
from crews.spec.crewai.importer import import_project
from crews.spec.load import crew_json_schema, load_crew, load_crew_text

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
JOB_POSTING = FIXTURES / "crewai" / "job_posting"
MAPPING = [
    "research_company_culture_task=research_agent",
    "research_role_requirements_task=research_agent",
    "draft_job_posting_task=writer_agent",
    "review_and_edit_job_posting_task=review_agent",
    "industry_analysis_task=research_agent",
]


def run(*args: str | Path) -> tuple[int, str, str]:
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


def test_validate_shows_inputs_roles_and_steps() -> None:
    code, out, err = run("validate", ROOT / "examples" / "research.yaml")
    assert (code, err) == (0, "")
    assert "research: sequential crew, 3 roles, 3 tasks" in out
    assert "honey bees" in out
    assert "│ review   │ reviewer   │ write     │ write    │" in out


def test_validate_a_bad_file_prints_the_message_and_no_traceback(tmp_path: Path) -> None:
    crew = tmp_path / "crew.yaml"
    text = (ROOT / "examples" / "research.yaml").read_text().replace("agent: writer", "agent: writter")
    crew.write_text(text)
    code, out, err = run("validate", crew)
    assert code == 1
    assert out == ""
    assert err == f"{crew}:34:12: tasks.write.agent: unknown agent 'writter'; did you mean 'writer'?\n"


def test_validate_a_missing_file(tmp_path: Path) -> None:
    code, _, err = run("validate", tmp_path / "nope.yaml")
    assert (code, err) == (1, f"{tmp_path / 'nope.yaml'}:1:1: the file does not exist\n")


def test_validate_a_crewai_project_needs_its_mapping() -> None:
    code, _, err = run("validate", JOB_POSTING)
    assert code == 1
    assert err.count("task has no agent") == 5
    assert "or pass --map industry_analysis_task=<agent>" in err
    code, out, err = run("validate", JOB_POSTING, *[a for pair in MAPPING for a in ("--map", pair)])
    assert (code, err) == (0, "")
    assert "job_posting: sequential crew, 3 roles, 5 tasks" in out


def test_validate_a_crewai_agents_yaml_reads_the_pair() -> None:
    code, out, _ = run("validate", FIXTURES / "crewai" / "outline_book" / "agents.yaml")
    assert code == 0
    assert "outline_book: sequential crew, 2 roles, 2 tasks" in out


def test_a_malformed_map_is_a_usage_error() -> None:
    code, _, err = run("validate", JOB_POSTING, "--map", "research_agent")
    assert code == 2
    assert "expected TASK=AGENT, got 'research_agent'" in err


def test_import_writes_a_crew_file_that_loads(tmp_path: Path) -> None:
    out_file = tmp_path / "job_posting.yaml"
    code, out, err = run("import", FIXTURES / "job_posting_project", "-o", out_file)
    assert (code, out) == (0, "")
    assert err.endswith(f"wrote {out_file}: crew 'job_posting_project', 3 roles, 5 tasks\n")
    assert err.count("runs on engine: crewai") == 3
    assert load_crew(out_file) == import_project(FIXTURES / "job_posting_project").spec
    assert run("validate", out_file)[0] == 0


def test_import_to_stdout_with_map_and_warnings(tmp_path: Path) -> None:
    (tmp_path / "agents.yaml").write_text(
        "writer:\n  role: Writer\n  goal: Write\n  backstory: B\n  cache: true\n"
    )
    (tmp_path / "tasks.yaml").write_text("write:\n  description: Write\n  expected_output: Text\n")
    code, out, err = run("import", tmp_path, "--map", "write=writer", "--name", "mini")
    assert code == 0
    assert (
        err
        == f"warning: {tmp_path / 'agents.yaml'}:5:3: writer.cache: 'cache' has no crews equivalent yet: left out\n"
    )
    spec = load_crew_text(out)
    assert (spec.name, spec.tasks["write"].agent) == ("mini", "writer")


def test_import_error_exits_1() -> None:
    code, out, err = run("import", JOB_POSTING)
    assert (code, out) == (1, "")
    assert err.startswith(
        f"{JOB_POSTING / 'tasks.yaml'}:1:1: research_company_culture_task.agent: task has no agent"
    )


def test_schema_prints_the_json_schema() -> None:
    code, out, _ = run("schema")
    assert code == 0
    assert json.loads(out) == crew_json_schema()


def test_the_installed_command_validates_and_imports(tmp_path: Path) -> None:
    crews = Path(sys.executable).parent / "crews"
    for example in sorted((ROOT / "examples").glob("*.yaml")):
        done = subprocess.run([crews, "validate", example], capture_output=True, text=True, check=False)
        note = "checked for syntax only" if example.stem == "support" else ""  # it names MCP tools
        assert done.returncode == 0 and (note in done.stderr if note else done.stderr == ""), example
    out_file = tmp_path / "crew.yaml"
    argv = [crews, "import", JOB_POSTING, "-o", out_file, *[a for pair in MAPPING for a in ("--map", pair)]]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert load_crew(out_file).name == "job_posting"


def test_validate_checks_mcp_tool_names_against_declared_servers_or_says_it_checked_syntax_only(
    tmp_path: Path,
) -> None:
    crews = Path(sys.executable).parent / "crews"
    support = ROOT / "examples" / "support.yaml"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREWS_MCP")}
    plain = subprocess.run([crews, "validate", support], capture_output=True, text=True, env=env, check=False)
    assert plain.returncode == 0 and "checked for syntax only" in plain.stderr

    bad = tmp_path / "bad.yaml"
    bad.write_text(support.read_text().replace("payments.refund", "payments.refund!"))
    wrong = subprocess.run([crews, "validate", bad], capture_output=True, text=True, env=env, check=False)
    assert (
        wrong.returncode == 1
        and "roles.agent.tools[1]" in wrong.stderr
        and "cannot be a tool name" in wrong.stderr
    )

    servers = tmp_path / "servers.yaml"
    servers.write_text("paymnts: {url: 'http://127.0.0.1:9/mcp', retries: 0}\n")
    env["CREWS_MCP_SERVERS_FILE"] = str(servers)
    unknown = subprocess.run(
        [crews, "validate", support], capture_output=True, text=True, env=env, check=False
    )
    assert unknown.returncode == 1
    assert "bad.yaml" not in unknown.stderr and "support.yaml:" in unknown.stderr
    assert "unknown MCP server 'payments'; did you mean 'paymnts'?" in unknown.stderr
