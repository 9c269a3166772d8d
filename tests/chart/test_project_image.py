"""A CrewAI project's code in the chart: a role's own image and projectPaths, and what the API is given."""

from __future__ import annotations

from pathlib import Path

import helm_python as helm
import pytest
import yaml
from typer.testing import CliRunner

from crews.cli.main import app
from crews.deploy.helm_values import chart_values
from crews.spec.load import load_crew_text
from tests.chart.render import Obj, of_kind, render, render_files, validate

SHOP = """
name: shop
process: hierarchical
manager_llm: big-model
roles:
  clerk:
    role: Clerk
    goal: Record.
    engine: crewai
    tools:
      - {name: ledger, crewai: "project:shop.tools.ledger:ledger"}
  auditor:
    role: Auditor
    goal: Check.
    engine: crewai
    tools:
      - {name: ledger, crewai: "project:shop.tools.ledger:ledger"}
  checker:
    role: Checker
    goal: Check the checks.
    engine: crewai
  writer: {role: Writer, goal: Write.}
tasks:
  record:
    description: Record it.
    expected_output: Done.
    agent: clerk
  audit:
    description: Audit it.
    expected_output: A verdict.
    agent: auditor
    output_pydantic: "project:audits.models:Verdict"
  review:
    description: Review it.
    expected_output: A review.
    agent: checker
    guardrails: [{function: "project:shop.guardrails:cites_the_ledger"}]
"""


def _containers(objects: list[Obj]) -> dict[str, Obj]:
    """The first container of each Deployment, by role (``api`` for the API's)."""
    out = {}
    for deployment in of_kind(objects, "Deployment"):
        role = deployment["metadata"].get("annotations", {}).get("crews.dev/role")
        name = role or deployment["metadata"]["name"].rpartition("-")[2]
        out[name] = deployment["spec"]["template"]["spec"]["containers"][0]
    return out


def _env(container: Obj) -> dict[str, str | None]:
    return {e["name"]: e.get("value") for e in container["env"]}


def test_roles_that_run_a_projects_code_get_its_image_and_paths() -> None:
    roles = chart_values([load_crew_text(SHOP, "shop.yaml")])["crews"]["shop"]["roles"]
    # clerk: its tool; auditor: its tool and its task's output model; checker: its task's guardrail
    assert roles["clerk"]["image"] == {"repository": "crews-project-shop"}
    assert roles["clerk"]["projectPaths"] == ["/opt/crews/projects/shop"]
    assert roles["auditor"]["image"] == {"repository": "crews-project-audits-shop"}
    assert roles["auditor"]["projectPaths"] == ["/opt/crews/projects/audits", "/opt/crews/projects/shop"]
    assert roles["checker"]["projectPaths"] == ["/opt/crews/projects/shop"]
    assert "image" not in roles["writer"] and "projectPaths" not in roles["writer"]


def test_the_rendered_workers_run_the_project_image_and_the_api_knows_every_project() -> None:
    values: Obj = {**chart_values([load_crew_text(SHOP, "shop.yaml")]), "crewaiImage": {
        "repository": "registry.example/crews-crewai", "pullPolicy": "Always"}}  # fmt: skip
    values["crews"]["shop"]["roles"]["clerk"]["image"]["tag"] = "7"
    objects = render(values)
    for obj in objects:
        validate(obj)
    containers = _containers(objects)
    clerk, auditor, writer = containers["clerk"], containers["auditor"], containers["writer"]
    assert (clerk["image"], clerk["imagePullPolicy"]) == ("crews-project-shop:7", "Always")
    assert auditor["image"] == "crews-project-audits-shop:0.1.0"  # the tag: the chart's appVersion
    assert writer["image"] == "crews:0.1.0"
    assert _env(clerk)["CREWS_PROJECT_PATHS"] == "/opt/crews/projects/shop"
    assert _env(auditor)["CREWS_PROJECT_PATHS"] == "/opt/crews/projects/audits:/opt/crews/projects/shop"
    assert "CREWS_PROJECT_PATHS" not in _env(writer)
    assert containers["manager"]["image"] == "crews:0.1.0"  # the implied manager runs no project code
    assert _env(containers["api"])["CREWS_PROJECT_PATHS"] == (
        "/opt/crews/projects/audits:/opt/crews/projects/shop"
    )


def test_role_defaults_declare_projects_for_roles_without_their_own() -> None:
    values: Obj = dict(chart_values([load_crew_text(SHOP, "shop.yaml")]))
    values["roleDefaults"] = {"projectPaths": ["/srv/shared/tools"]}
    containers = _containers(render(values))
    assert _env(containers["writer"])["CREWS_PROJECT_PATHS"] == "/srv/shared/tools"
    assert _env(containers["clerk"])["CREWS_PROJECT_PATHS"] == "/opt/crews/projects/shop"
    assert _env(containers["api"])["CREWS_PROJECT_PATHS"] == (
        "/opt/crews/projects/audits:/opt/crews/projects/shop:/srv/shared/tools"
    )


def test_without_projects_nothing_is_declared_and_the_api_does_not_check() -> None:
    plain = SHOP.replace('    output_pydantic: "project:audits.models:Verdict"\n', "")
    plain = plain.replace('{name: ledger, crewai: "project:shop.tools.ledger:ledger"}', "ledger")
    plain = plain.replace('    guardrails: [{function: "project:shop.guardrails:cites_the_ledger"}]\n', "")
    containers = _containers(render(dict(chart_values([load_crew_text(plain, "shop.yaml")]))))
    assert all("CREWS_PROJECT_PATHS" not in _env(container) for container in containers.values())
    assert containers["clerk"]["image"] == "crews-crewai:0.1.0"


@pytest.mark.parametrize(
    ("paths", "image"),
    [(["relative/dir"], None), (["/a:/b"], None), ([], {"repository": "x", "digest": "sha256:0"})],
)
def test_schema_rejects_bad_project_paths_and_image_keys(paths: list[str], image: Obj | None) -> None:
    values: Obj = dict(chart_values([load_crew_text(SHOP, "shop.yaml")]))
    clerk = values["crews"]["shop"]["roles"]["clerk"]
    clerk["projectPaths"] = paths
    if image is not None:
        clerk["image"] = image
    with pytest.raises(helm.HelmError, match="/crews/shop/roles/clerk"):
        render_files(values)


def test_helm_values_says_how_to_build_the_project_image(tmp_path: Path) -> None:
    crew = tmp_path / "shop.yaml"
    crew.write_text(SHOP)
    result = CliRunner().invoke(app, ["helm", "values", str(crew)])
    assert result.exit_code == 0, result.output
    header = [line for line in result.stdout.splitlines() if line.startswith("#")]
    assert "#   shop/clerk: crews-project-shop (/opt/crews/projects/shop)" in header
    assert any("python -m images.build --project DIR" in line for line in header)
    values = yaml.safe_load(result.stdout)
    assert values["crews"]["shop"]["roles"]["clerk"]["image"] == {"repository": "crews-project-shop"}
