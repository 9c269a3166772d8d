"""Registration refuses a crew naming the code of a CrewAI project the crewai workers do not declare.

The API knows the declaration only when it is given it (``CREWS_PROJECT_PATHS``: ``crews up``
always passes the stack's, the chart every role's ``projectPaths``); without it, the workers'
own declaration decides when a step runs.
"""

from __future__ import annotations

from pathlib import PurePath

import httpx
import pytest

from crews.api.settings import ApiSettings
from tests.crews.api.conftest import StartApi

YAML = {"content-type": "application/yaml"}
CREW = """\
name: shop
roles:
  clerk:
    role: Clerk
    goal: Record.
    engine: crewai
    tools:
      - {name: ledger, crewai: "project:shop.tools.ledger:LedgerTool"}
      - {name: search, crewai: "crewai_tools:SerperDevTool"}
tasks:
  record:
    description: Record it.
    expected_output: Done.
    agent: clerk
    output_pydantic: "project:audits.models:Verdict"
"""


async def _register(client: httpx.AsyncClient) -> httpx.Response:
    return await client.post("/crews", content=CREW, headers=YAML)


async def test_a_reference_to_an_undeclared_project_is_refused_at_its_line(start_api: StartApi) -> None:
    async with start_api(project_paths=[PurePath("/opt/crews/projects/shop")]) as client:
        response = await _register(client)
        assert response.status_code == 422, response.text
        [issue] = response.json()["issues"]
        assert issue["field"] == "tasks.record.output_pydantic"
        assert (
            issue["line"]
            == CREW.splitlines().index('    output_pydantic: "project:audits.models:Verdict"') + 1
        )
        assert "package 'audits', which is not a declared CrewAI project (declared: shop)" in issue["message"]
        assert "CREWS_PROJECT_PATHS" in issue["message"] and "projectPaths" in issue["message"]
        assert (await client.get("/crews")).json() == {"crews": []}


async def test_with_every_project_declared_the_crew_registers(start_api: StartApi) -> None:
    declared = [PurePath("/opt/crews/projects/shop"), PurePath("/srv/audits")]
    async with start_api(project_paths=declared) as client:
        assert (await _register(client)).status_code == 201


async def test_with_none_declared_every_project_reference_is_refused(start_api: StartApi) -> None:
    async with start_api(project_paths=[]) as client:
        issues = (await _register(client)).json()["issues"]
        assert [issue["field"] for issue in issues] == [
            "roles.clerk.tools[0].crewai",
            "tasks.record.output_pydantic",
        ]


async def test_an_api_not_told_the_declaration_does_not_check(start_api: StartApi) -> None:
    async with start_api() as client:
        assert (await _register(client)).status_code == 201


def test_the_declaration_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREWS_PROJECT_PATHS", "/opt/crews/projects/shop:/srv/audits")
    assert ApiSettings().project_paths == [PurePath("/opt/crews/projects/shop"), PurePath("/srv/audits")]
    monkeypatch.setenv("CREWS_PROJECT_PATHS", "")  # what `crews up` passes without --project: none
    assert ApiSettings().project_paths == []
    monkeypatch.delenv("CREWS_PROJECT_PATHS")
    assert ApiSettings().project_paths is None
