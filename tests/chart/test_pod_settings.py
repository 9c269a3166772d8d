"""The vLLM pods' security settings and writable paths, and a role's variables from Secrets."""

from __future__ import annotations

import pytest

from tests.chart.render import RELEASE, Obj, by_name, example_values, of_kind, render, validate

CREW, ROLE = "research", "writer"


@pytest.fixture(scope="module")
def values() -> Obj:
    return example_values()


def _worker(objects: list[Obj], crew: str, role: str) -> Obj:
    [deployment] = [
        d
        for d in of_kind(objects, "Deployment")
        if d["metadata"].get("annotations", {}).get("crews.dev/crew") == crew
        and d["metadata"]["annotations"].get("crews.dev/role") == role
    ]
    container: Obj = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def test_vllm_runs_non_root_on_a_read_only_root_and_writes_only_its_volumes(values: Obj) -> None:
    pod = by_name(render(values), "Deployment", f"{RELEASE}-crews-vllm")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    [container] = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert set(mounts) == {"/cache", "/tmp", "/dev/shm"}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert all("emptyDir" in volumes[name] for name in mounts.values())
    env = {e["name"]: e.get("value") for e in container["env"]}
    cache_vars = (
        "HOME",
        "HF_HOME",
        "XDG_CACHE_HOME",
        "VLLM_CACHE_ROOT",
        "TRITON_CACHE_DIR",
        "TORCHINDUCTOR_CACHE_DIR",
    )
    for name in cache_vars:  # every cache the server writes lands on a volume
        assert str(env[name]).startswith("/cache/"), name
    assert env["TMPDIR"] == "/tmp" and env["USER"]


def test_the_vllm_cache_size_limit_and_security_settings_are_the_operators(values: Obj) -> None:
    changed = {
        **values,
        "vllm": {"cacheSizeLimit": "40Gi", "securityContext": {"readOnlyRootFilesystem": False}},
    }
    deployment = by_name(render(changed), "Deployment", f"{RELEASE}-crews-vllm")
    validate(deployment)
    pod = deployment["spec"]["template"]["spec"]
    assert {v["name"]: v for v in pod["volumes"]}["cache"] == {
        "name": "cache",
        "emptyDir": {"sizeLimit": "40Gi"},
    }
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is False


def test_a_roles_env_takes_secret_keys_and_whole_secrets(values: Obj) -> None:
    secret_ref = {"secretKeyRef": {"name": "search", "key": "api-key"}}
    role = {
        **values["crews"][CREW]["roles"][ROLE],
        "env": {"SEARCH_API_KEY": {"valueFrom": secret_ref}, "LEVEL": 3},
        "envFrom": [{"secretRef": {"name": "writer-tools"}}],
    }
    crews = {**values["crews"], CREW: {"roles": {**values["crews"][CREW]["roles"], ROLE: role}}}
    changed = {
        **values,
        "crews": crews,
        "roleDefaults": {"env": {"REGION": "eu"}, "envFrom": [{"configMapRef": {"name": "shared"}}]},
    }
    objects = render(changed)
    for deployment in of_kind(objects, "Deployment"):
        validate(deployment)
    worker = _worker(objects, CREW, ROLE)
    env = {e["name"]: e for e in worker["env"]}
    assert env["SEARCH_API_KEY"] == {"name": "SEARCH_API_KEY", "valueFrom": secret_ref}
    assert env["LEVEL"] == {"name": "LEVEL", "value": "3"}
    assert env["REGION"] == {"name": "REGION", "value": "eu"}  # the default, beside the role's own
    assert worker["envFrom"] == [
        {"configMapRef": {"name": "shared"}},
        {"secretRef": {"name": "writer-tools"}},
    ]
    other = _worker(objects, CREW, "reviewer")
    assert "SEARCH_API_KEY" not in {e["name"] for e in other["env"]}
    assert other["envFrom"] == [{"configMapRef": {"name": "shared"}}]


@pytest.mark.parametrize(
    "env",
    [
        {"KEY": {"value": "x"}},  # not a valueFrom
        {"KEY": {"valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}},  # only Secret / ConfigMap keys
        {"KEY": {"valueFrom": {"secretKeyRef": {"name": "s"}}}},  # no key
        {"bad-name": "x"},
    ],
)
def test_the_schema_refuses_other_env_shapes(values: Obj, env: Obj) -> None:
    with pytest.raises(Exception, match=r"env|bad-name"):
        render({**values, "roleDefaults": {"env": env}})
