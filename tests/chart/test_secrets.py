"""Keys the chart makes and keeps in Secrets: each reaches its process by secretKeyRef, never as a plain value."""

from __future__ import annotations

import pytest
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
