"""A CrewAI project written outside the repository, with a custom tool, a guardrail and human_input, imports
with ``crews import`` and runs through ``crews up --project`` on the crewai engine, as CrewAI would run it:
its tool is called (behind the approval gate), its guardrail sends the first answer back, and a person's
feedback on the answer is fed back to the agent until they accept it."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from textwrap import dedent
from typing import Any

import httpx
import pytest

from crews.cli.client import CrewsClient
from crews.local.servers import ServerProcess
from inference.testing.script import Script
from tests.e2e.stack import ROOT
from tests.e2e.test_up import CREWS, stack_info, up_env
from tests.waits import eventually

pytestmark = pytest.mark.timeout(300)

CREW_PY = """\
from crewai import Agent, Crew, Process, Task
from crewai.project import CrewBase, agent, crew, task

from .guardrails import cites_the_ledger
from .tools.custom_tool import LedgerTool


@CrewBase
class ShopCrew:
    agents_config = "config/agents.yaml"
    tasks_config = "config/tasks.yaml"

    @agent
    def clerk(self) -> Agent:
        return Agent(config=self.agents_config["clerk"], tools=[LedgerTool()])

    @task
    def record(self) -> Task:
        return Task(config=self.tasks_config["record"], agent=self.clerk(), guardrail=cites_the_ledger,
                    guardrail_max_retries=2)

    @task
    def summary(self) -> Task:
        return Task(config=self.tasks_config["summary"], agent=self.clerk(), human_input=True)

    @crew
    def crew(self) -> Crew:
        return Crew(agents=self.agents, tasks=self.tasks, process=Process.sequential)
"""

TOOL_PY = """\
from pathlib import Path

from crewai.tools import BaseTool
from pydantic import BaseModel, Field

LEDGER = Path({ledger!r})


class LedgerEntry(BaseModel):
    entry: str = Field(description="what to record")


class LedgerTool(BaseTool):
    name: str = "Ledger"
    description: str = "Records one entry in the shop's ledger."
    args_schema: type[BaseModel] = LedgerEntry

    def _run(self, entry: str) -> str:
        with LEDGER.open("a") as ledger:
            ledger.write(entry + "\\n")
        return f"recorded: {{entry}}"
"""

GUARDRAILS_PY = """\
def cites_the_ledger(output):
    if "SOURCE: ledger" in output.raw:
        return True, output.raw
    return False, "Say where it comes from: end the answer with SOURCE: ledger."
"""

AGENTS = """\
clerk:
  role: Shop clerk
  goal: Keep the ledger of {shop}
  backstory: Careful with numbers.
"""
TASKS = """\
record:
  description: Record the sale of {item} in the ledger.
  expected_output: What was recorded.
summary:
  description: Summarise the day's ledger.
  expected_output: A short summary.
"""


def write_project(root: Path, ledger: Path) -> Path:
    """A CrewAI project as ``crewai create`` lays it out, with no pyproject: a package directory."""
    package = root / "shop_crew"
    files = {
        "__init__.py": "",
        "crew.py": CREW_PY,
        "guardrails.py": GUARDRAILS_PY,
        "tools/__init__.py": "",
        "tools/custom_tool.py": TOOL_PY.format(ledger=str(ledger)),
        "config/agents.yaml": AGENTS,
        "config/tasks.yaml": TASKS,
    }
    for name, text in files.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(dedent(text))
    return package


SCRIPT = {
    "rules": [
        {
            "role": "clerk",
            "step": "record",
            "replies": [
                {"tool_calls": [{"name": "ledger_tool", "arguments": {"entry": "1 teapot"}}]},
                "Recorded 1 teapot.",  # the guardrail sends this back: no source
                "Recorded 1 teapot. SOURCE: ledger",
            ],
        },
        {"role": "clerk", "step": "summary", "replies": ["One sale.", "Title: Monday. One teapot sold."]},
    ]
}


@pytest.fixture
async def project_up(tmp_path: Path) -> AsyncIterator[tuple[ServerProcess, Path, Path]]:
    ledger = tmp_path / "ledger.txt"
    package = write_project(tmp_path / "outside", ledger)
    home = tmp_path / "home"
    proc = ServerProcess(
        "crews up", [CREWS, "up", "--project", str(package)], "starting coordinator", 0,
        env=up_env(home), cwd=str(ROOT),
    )  # fmt: skip
    proc.ready_timeout_s = 60
    proc.start()
    try:
        yield proc, package, home
    finally:
        proc.stop(signal.SIGINT, timeout=120)
        print(proc.log_tail)


async def decide_when_asked(client: CrewsClient, job: str, tool: str, n: int) -> dict[str, Any]:
    async def pending() -> dict[str, Any] | None:
        waiting = [a for a in await client.approvals(job) if a["tool"] == tool and a["status"] == "pending"]
        asked = [a for a in await client.approvals(job) if a["tool"] == tool]
        return waiting[0] if waiting and len(asked) == n else None

    return await eventually(pending, 120, f"approval {n} of {tool}")


async def test_a_crewai_project_with_its_own_tool_guardrail_and_human_input_runs_through_crews_up(
    project_up: tuple[ServerProcess, Path, Path], tmp_path: Path
) -> None:
    _, package, home = project_up
    crew_file = tmp_path / "shop.yaml"
    imported = await asyncio.to_thread(
        subprocess.run,
        [CREWS, "import", str(package), "-o", str(crew_file)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    text = crew_file.read_text()
    assert "crewai: project:shop_crew.tools.custom_tool:LedgerTool" in text
    assert "function: project:shop_crew.guardrails:cites_the_ledger" in text
    assert "engine: crewai" in text
    assert "LedgerTool" not in text.replace("project:shop_crew.tools.custom_tool:LedgerTool", "")  # no code

    info = await stack_info(home)
    async with httpx.AsyncClient() as http:
        llm = info.llm_urls.split(",")[0].removesuffix("/v1")
        (
            await http.post(f"{llm}/script", json=Script.model_validate(SCRIPT).model_dump(by_alias=True))
        ).raise_for_status()
    async with CrewsClient(info.api_url) as client:
        await client.register_crew(text)
        job = (await client.submit("shop_crew", {"shop": "Tea & Co", "item": "a teapot"})).id

        tool_call = await decide_when_asked(client, job, "ledger_tool", 1)
        assert tool_call["arguments"] == {"entry": "1 teapot"}
        ran = await asyncio.to_thread((tmp_path / "ledger.txt").exists)
        assert not ran  # nothing ran before a person approved
        await client.decide(job, tool_call["id"], approve=True)

        first = await decide_when_asked(client, job, "human_input", 1)
        assert first["arguments"] == {"answer": "One sale."}
        await client.decide(job, first["id"], approve=False, comment="Give it a title.")
        second = await decide_when_asked(client, job, "human_input", 2)
        assert second["arguments"] == {"answer": "Title: Monday. One teapot sold."}
        await client.decide(job, second["id"], approve=True)

        async def ended() -> Any:
            view = await client.job(job)
            return view if view.status in ("completed", "failed") else None

        view = await eventually(ended, 120, "the job ends")
    assert view.status == "completed", view.reason
    assert (tmp_path / "ledger.txt").read_text() == "1 teapot\n"  # the project's own tool ran, once
    outputs = {step.id: step.output for step in view.steps}
    assert outputs["record"] == "Recorded 1 teapot. SOURCE: ledger"  # the guardrail's retry
    assert outputs["summary"] == "Title: Monday. One teapot sold."
    async with httpx.AsyncClient() as http:
        sent = (await http.get(f"{llm}/requests")).json()
    record = [r["body"]["messages"] for r in sent if r["step"] == "record"]
    assert len(record) == 3  # tool call, rejected answer, answer again
    assert "SOURCE: ledger" in str(record[2])  # CrewAI retried with the guardrail's feedback
    summary = [r["body"]["messages"] for r in sent if r["step"] == "summary"]
    assert len(summary) == 2 and "Give it a title." in str(summary[1])  # the person's feedback
