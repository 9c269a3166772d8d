"""Keys the chart makes and keeps in Secrets: each reaches its process by secretKeyRef, never as a plain value."""

from __future__ import annotations

import json

import pytest
from helm_python.errors import HelmRenderError
from pydantic import SecretStr

from crews.a2a.push.sealing import PushSealer, PushSecrets
from crews.a2a.settings import A2ASettings
from tests.chart.render import RELEASE, Obj, by_name, example_values, of_kind, render

PUSH_SECRET = f"{RELEASE}-crews-push-key"


def env_entries(objects: list[Obj], name: str) -> list[tuple[str, Obj]]:
    """Every (Deployment, env entry) named ``name`` in the rendered Deployments."""
    return [
        (d["metadata"]["name"], e)
        for d in of_kind(objects, "Deployment")
        for c in d["spec"]["template"]["spec"]["containers"]
        for e in c.get("env", [])
        if e["name"] == name
    ]


def secret_value(objects: list[Obj], ref: Obj) -> str:
    value: str = by_name(objects, "Secret", ref["name"])["stringData"][ref["key"]]
    return value


@pytest.fixture(scope="module")
def objects() -> list[Obj]:
    return render(example_values())


def test_the_api_seals_webhook_secrets_with_a_key_made_once_and_kept_in_a_secret(objects: list[Obj]) -> None:
    [(deployment, entry)] = env_entries(objects, "CREWS_A2A_PUSH_SECRET_KEY")
    assert deployment == f"{RELEASE}-crews-api"  # the API creates the configs and delivers the webhooks
    assert "value" not in entry
    ref = entry["valueFrom"]["secretKeyRef"]
    assert ref == {"name": PUSH_SECRET, "key": "push-key"}
    key = secret_value(objects, ref)
    settings = A2ASettings(push_secret_key=SecretStr(key))  # the API's own settings accept it
    assert settings.push_secret_key is not None
    sealer = PushSealer(settings.push_secret_key)
    secrets = PushSecrets(token="t", credentials="c")
    assert sealer.open(sealer.seal(secrets)) == secrets
    assert key != secret_value(
        render(example_values()), ref
    )  # random per install (kept on upgrade by lookup)


def test_an_operators_push_key_secret_replaces_the_made_one() -> None:
    objects = render({**example_values(), "api": {"pushKeySecret": {"name": "my-push", "key": "fernet"}}})
    [(_, entry)] = env_entries(objects, "CREWS_A2A_PUSH_SECRET_KEY")
    assert entry["valueFrom"]["secretKeyRef"] == {"name": "my-push", "key": "fernet"}
    assert PUSH_SECRET not in [s["metadata"]["name"] for s in of_kind(objects, "Secret")]


AGENT_KEYS = f"{RELEASE}-crews-role-a2a-keys"


def calling_values(**agent: object) -> Obj:
    """The examples' values with research/reviewer calling research/writer's agent on NATS (``agent``: more fields)."""
    values = {**example_values(), "roleAgentKeys": {"seed": "test-seed"}}
    values["a2aAgents"] = {"writer-agent": {"nats": "research.writer", **agent}}
    values["crews"]["research"]["roles"]["reviewer"]["outsideAgent"] = "writer-agent"
    return values


def role_env(objects: list[Obj], crew: str, role: str) -> dict[str, Obj]:
    [deployment] = [
        d
        for d in of_kind(objects, "Deployment")
        if d["metadata"].get("annotations", {}).get("crews.dev/crew") == crew
        and d["metadata"]["annotations"].get("crews.dev/role") == role
    ]
    return {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_a_called_role_agent_and_its_caller_read_one_made_key_from_a_secret() -> None:
    objects = render(calling_values())
    writer, reviewer = role_env(objects, "research", "writer"), role_env(objects, "research", "reviewer")
    required = writer["CREWS_ROLE_A2A_KEYS"]["valueFrom"]["secretKeyRef"]
    [declared] = json.loads(reviewer["CREWS_A2A_AGENTS"]["value"])
    sent = reviewer[declared["authorization_env"]]["valueFrom"]["secretKeyRef"]
    assert required == sent and required["name"] == AGENT_KEYS
    key = secret_value(objects, required)
    assert len(key) == 40
    rendered = json.dumps([o for o in objects if o["metadata"]["name"] != AGENT_KEYS])
    assert key not in rendered  # only in its Secret: every other object names it by secretKeyRef
    for deployment, entry in env_entries(objects, "CREWS_ROLE_A2A_KEYS"):
        assert "value" not in entry, deployment
    # the roles nobody calls through an agent get no key (NATS lets no one publish on their subject)
    assert [d for d, _ in env_entries(objects, "CREWS_ROLE_A2A_KEYS")] == [
        d["metadata"]["name"]
        for d in of_kind(objects, "Deployment")
        if "research-writer" in d["metadata"]["name"]
    ]
    other_seed = render({**calling_values(), "roleAgentKeys": {"seed": "another-seed"}})
    assert secret_value(other_seed, required) != key  # derived from the seed (kept across upgrades by lookup)
    assert secret_value(render(calling_values()), required) == key


def test_an_agents_own_secret_is_the_key_both_sides_read() -> None:
    secret = {"name": "writer-key", "key": "bearer"}
    objects = render(calling_values(authorizationSecret=secret))
    writer, reviewer = role_env(objects, "research", "writer"), role_env(objects, "research", "reviewer")
    assert writer["CREWS_ROLE_A2A_KEYS"]["valueFrom"]["secretKeyRef"] == secret
    assert reviewer["CREWS_A2A_CREDENTIAL_WRITER_AGENT"]["valueFrom"]["secretKeyRef"] == secret
    assert AGENT_KEYS not in [s["metadata"]["name"] for s in of_kind(objects, "Secret")]


def test_two_agents_naming_one_role_with_other_secrets_do_not_render() -> None:
    values = calling_values(authorizationSecret={"name": "writer-key"})
    values["a2aAgents"]["writer-too"] = {"nats": "research.writer", "authorizationSecret": {"name": "other"}}
    with pytest.raises(
        HelmRenderError, match=r"names the role agent research\.writer with another credential"
    ):
        render(values)
