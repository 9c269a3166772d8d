"""``crews helm values``: crew files → chart values, with every NATS name from bus.subjects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from helm_python.errors import HelmRenderError
from typer.testing import CliRunner

from bus import subjects
from crews.cli.main import app
from crews.deploy.helm_values import chart_values
from crews.errors import CrewSpecError
from crews.spec.load import load_crew_text
from crews.spec.models import MANAGER_ROLE
from tests.chart.render import EXAMPLES, PUBLIC, Obj, of_kind, render, validate

MIXED = """
name: Odd_Crew
process: hierarchical
manager_llm: big-model
roles:
  Remote_Helper:
    role: Helper
    goal: Help.
    engine: a2a
    agent: helper
    max_execution_time: 45.5
  Peer:
    role: Peer
    goal: Ask a peer.
    engine: a2a
    agent: peer
  worker:
    role: Worker
    goal: Work.
    scaling: {min: 2, max: 9, target_queue_depth: 3}
tasks:
  one:
    description: Do it.
    expected_output: Done.
"""

AGENTS = {
    "helper": {
        "url": "https://agents.example.com:8443/a2a",
        "authorizationSecret": {"name": "helper-key", "key": "token"},
    },
    "peer": {"nats": "other.agent"},
}
"""The operator's declarations of the outside agents MIXED names."""


def test_role_values_come_from_bus_subjects() -> None:
    spec = load_crew_text(MIXED, "mixed.yaml")
    roles = chart_values([spec])["crews"]["Odd_Crew"]["roles"]
    assert set(roles) == {"Remote_Helper", "Peer", "worker", MANAGER_ROLE}
    for key, role in roles.items():
        assert role["stream"] == subjects.TASKS_STREAM
        assert role["consumer"] == subjects.role_consumer("Odd_Crew", key)
        assert role["subject"] == subjects.task_subject("Odd_Crew", key)
        assert role["deadLetterSubject"] == subjects.dead_letter_subject(
            subjects.TASKS_STREAM, role["consumer"]
        )
        assert role["a2aSubject"] == subjects.a2a_subject(f"Odd_Crew.{key}")
    assert roles["worker"]["scaling"] == {"min": 2, "max": 9, "targetQueueDepth": 3}
    assert roles["Remote_Helper"]["maxExecutionTime"] == 45.5
    assert (roles["Remote_Helper"]["outsideAgent"], roles["Peer"]["outsideAgent"]) == ("helper", "peer")
    assert all(role["a2aPeers"] == [] and "egress" not in role for role in roles.values())
    assert "maxExecutionTime" not in roles["worker"]


def test_odd_names_render_valid_objects() -> None:
    objects = render({**chart_values([load_crew_text(MIXED, "mixed.yaml")]), "a2aAgents": AGENTS})
    for obj in objects:
        validate(obj)
    names = [d["metadata"]["name"] for d in of_kind(objects, "Deployment")]
    assert len(names) == len(set(names)) == 4 + 3  # roles + api, coordinator, vLLM
    [egress] = [
        p
        for p in of_kind(objects, "NetworkPolicy")
        if p["metadata"].get("annotations", {}).get("crews.dev/role") == "Remote_Helper"
    ]
    # no cidrs declared: the url's port on the public internet (no private, link-local or metadata address)
    assert egress["spec"]["egress"] == [{"to": PUBLIC, "ports": [{"port": 8443, "protocol": "TCP"}]}]
    [helper] = [
        d
        for d in of_kind(objects, "Deployment")
        if d["metadata"].get("annotations", {}).get("crews.dev/role") == "Remote_Helper"
    ]
    env = {e["name"]: e for e in helper["spec"]["template"]["spec"]["containers"][0]["env"]}
    declared = json.loads(env["CREWS_A2A_AGENTS"]["value"])
    assert declared == [
        {
            "name": "helper",
            "url": "https://agents.example.com:8443/a2a",
            "allow_private": False,
            "authorization_env": "CREWS_A2A_CREDENTIAL_HELPER",
        }
    ]
    assert env["CREWS_A2A_CREDENTIAL_HELPER"]["valueFrom"] == {
        "secretKeyRef": {"name": "helper-key", "key": "token"}
    }


def test_a_role_naming_an_undeclared_agent_does_not_render() -> None:
    with pytest.raises(HelmRenderError, match="a2aAgents does not declare"):
        render(dict(chart_values([load_crew_text(MIXED, "mixed.yaml")])))


def test_names_that_would_collide_in_kubernetes_stay_apart() -> None:
    def crew(name: str, role: str) -> str:
        return f"name: {name}\nroles:\n  {role}: {{role: R, goal: G}}\ntasks:\n  t: {{description: D, expected_output: O, agent: {role}}}\n"

    specs = [load_crew_text(crew("a-b", "c"), "1.yaml"), load_crew_text(crew("a", "b-c"), "2.yaml")]
    objects = render(dict(chart_values(specs)))
    names = [d["metadata"]["name"] for d in of_kind(objects, "Deployment")]
    assert len(names) == len(set(names))


def test_two_crews_with_one_name_are_refused() -> None:
    spec = load_crew_text(MIXED, "mixed.yaml")
    with pytest.raises(CrewSpecError, match="Odd_Crew"):
        chart_values([spec, spec])


def test_cli_prints_values_for_every_example() -> None:
    result = CliRunner().invoke(app, ["helm", "values", *map(str, EXAMPLES)])
    assert result.exit_code == 0, result.output
    values: Obj = yaml.safe_load(result.stdout)
    assert set(values["crews"]) == {"demo", "fanout", "hierarchical", "research", "support"}
    assert values["crews"]["support"]["roles"]["agent"]["mcpServers"] == ["payments"]
    assert "mcpServers" not in values["crews"]["research"]["roles"]["researcher"]
    assert result.stdout.startswith("# Values for the crews Helm chart")


def test_cli_names_the_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nroles: {}\ntasks: {}\n")
    result = CliRunner().invoke(app, ["helm", "values", str(bad)])
    assert result.exit_code == 1
    assert "bad.yaml" in result.output
