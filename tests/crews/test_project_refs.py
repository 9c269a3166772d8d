"""``crews validate --project DIR``: a crew's project: references resolve in the project's files, none of it run."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest
import typer
from typer.testing import CliRunner

from crews.cli.spec import register

CREW = """\
name: shop
roles:
  clerk:
    role: Clerk
    goal: Record.
    engine: crewai
    tools:
      - {name: ledger, crewai: "project:shop.tools.ledger:LedgerTool"}
tasks:
  record:
    description: Record it.
    expected_output: Done.
    agent: clerk
    guardrails: [{function: "project:shop.guardrails:cites_the_ledger"}]
    output_pydantic: "project:shop:Entry"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A CrewAI project whose modules would leave a file behind if anything imported them."""
    root = tmp_path / "shop_project"
    package = root / "src" / "shop"
    (package / "config").mkdir(parents=True)
    (package / "tools").mkdir()
    (package / "config" / "agents.yaml").write_text("clerk: {role: Clerk, goal: Record., backstory: B}\n")
    (package / "config" / "tasks.yaml").write_text(
        "record: {description: Record it., expected_output: Done., agent: clerk}\n"
    )
    ran = f"open({str(tmp_path / 'ran')!r}, 'w').close()\n"
    (package / "__init__.py").write_text(ran + "from pydantic import BaseModel as Entry\n")
    (package / "tools" / "ledger.py").write_text(
        ran + "try:\n    from crewai.tools import BaseTool\nexcept ImportError:\n    BaseTool = object\n"
        "\n\nclass LedgerTool(BaseTool):\n    pass\n"
    )
    (package / "guardrails.py").write_text(
        ran + "if True:\n    def cites_the_ledger(output):\n        return (True, output)\n"
    )
    return root


def run(*args: str | Path) -> tuple[int, str, str]:
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


def crew_file(tmp_path: Path, text: str = CREW) -> Path:
    path = tmp_path / "shop.yaml"
    path.write_text(text)
    return path


def test_references_that_resolve_pass_and_nothing_is_imported(tmp_path: Path, project: Path) -> None:
    code, out, err = run("validate", crew_file(tmp_path), "--project", project)
    assert (code, err) == (0, ""), err
    assert "shop: sequential crew" in out
    assert not (tmp_path / "ran").exists()


def test_without_a_project_only_the_syntax_is_checked_and_it_says_so(tmp_path: Path) -> None:
    code, _, err = run("validate", crew_file(tmp_path))
    assert code == 0
    assert "pass --project DIR" in err


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        (
            "shop.tools.ledger:LedgerTool",
            "shop.tools.ledgr:LedgerTool",
            "roles.clerk.tools[0].crewai",
            "module 'shop.tools.ledgr' is not in the project (shop/tools/ledgr.py or "
            "shop/tools/ledgr/__init__.py does not exist)",
        ),
        (
            "shop.guardrails:cites_the_ledger",
            "shop.guardrails:cites_the_books",
            "tasks.record.guardrails[0].function",
            "guardrails.py defines no 'cites_the_books' at its top level",
        ),
        (
            "project:shop:Entry",
            "project:other.models:Entry",
            "tasks.record.output_pydantic",
            "'project:other.models:Entry' is in package 'other', which is not a declared CrewAI project "
            "(declared: shop)",
        ),
    ],
)
def test_a_reference_that_does_not_resolve_is_named_at_its_line(
    tmp_path: Path, project: Path, old: str, new: str, field: str, message: str
) -> None:
    text = CREW.replace(old, new)
    path = crew_file(tmp_path, text)
    code, out, err = run("validate", path, "--project", project)
    assert (code, out) == (1, "")
    line = next(number for number, written in enumerate(text.splitlines(), 1) if new in written)
    assert err.startswith(f"{path}:{line}:"), err
    assert f": {field}: " in err and message in err, err
    assert not (tmp_path / "ran").exists()


def test_a_project_directory_is_checked_against_itself(tmp_path: Path, project: Path) -> None:
    package = project / "src" / "shop"
    (package / "crew.py").write_text(
        dedent(
            """\
            from crewai import Agent, Crew, Task
            from crewai.project import CrewBase, agent, crew, task

            from .tools.ledger import LedgerTool
            from .tools.missing import GoneTool


            @CrewBase
            class ShopCrew:
                @agent
                def clerk(self) -> Agent:
                    return Agent(config=self.agents_config["clerk"], tools=[LedgerTool(), GoneTool()])

                @task
                def record(self) -> Task:
                    return Task(config=self.tasks_config["record"])
            """
        )
    )
    code, _, err = run("validate", project)
    assert code == 1
    assert (
        "roles.clerk.tools[1].crewai: 'project:shop.tools.missing:GoneTool': module 'shop.tools.missing'"
        in err
    )
    assert "LedgerTool" not in err
    assert not (tmp_path / "ran").exists()
