"""The ``helm test`` hook: a Pod (and its ConfigMap and NetworkPolicy) that checks the API and a role's path.

The script it runs (files/helm_test.py) is run for real against NATS, Redis, the API and an LLM in
``tests/chart/test_nats_accounts.py``; here: what the hook renders.
"""

from __future__ import annotations

from typing import Any

from tests.chart.render import CHART, RELEASE, Obj, by_name, example_values, of_kind, render, validate

HOOK = {"helm.sh/hook": "test", "helm.sh/hook-delete-policy": "before-hook-creation,hook-succeeded"}
NAME = f"{RELEASE}-crews-test"


def hook_pod(objects: list[Obj]) -> Obj:
    [pod] = of_kind(objects, "Pod")
    assert pod["metadata"]["name"] == NAME
    return pod


def pod_env(pod: Obj) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in pod["spec"]["containers"][0]["env"]}


def test_the_hook_pod_runs_the_shipped_script_in_the_crews_image() -> None:
    objects = render(example_values())
    pod = hook_pod(objects)
    validate(pod)
    assert pod["metadata"]["annotations"].items() >= HOOK.items()
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["activeDeadlineSeconds"] == 60
    [container] = spec["containers"]
    assert container["image"] == "crews:0.1.0"
    assert container["command"] == ["python3", "/etc/crews/test/helm_test.py"]
    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == "/etc/crews/test"]
    [volume] = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    config = by_name(objects, "ConfigMap", volume["configMap"]["name"])
    assert config["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert int(config["metadata"]["annotations"]["helm.sh/hook-weight"]) < 0  # before the Pod
    assert config["data"]["helm_test.py"] == (CHART / "files" / "helm_test.py").read_text()


def test_the_hook_checks_as_the_first_role_with_its_nats_user_and_network_policies() -> None:
    objects = render(example_values())
    pod = hook_pod(objects)
    assert pod["metadata"]["annotations"]["crews.dev/as"] == "demo/explorer"
    env = pod_env(pod)
    role = next(
        d
        for d in of_kind(objects, "Deployment")
        if d["metadata"].get("annotations", {}).get("crews.dev/crew") == "demo"
        and d["metadata"]["annotations"]["crews.dev/role"] == "explorer"
    )
    worker_env = {
        e["name"]: e.get("value", e.get("valueFrom"))
        for e in role["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    for name in ("CREWS_NATS_URL", "CREWS_REDIS_URL", "CREWS_LLM_URLS", "CREWS_LLM_MODEL"):
        assert env[name] == worker_env[name], name
    assert env["CREWS_TEST_API_URL"] == f"http://{RELEASE}-crews-api:80"
    assert env["CREWS_TEST_STREAM"] == "CREWS_TASKS"
    assert env["CREWS_TEST_POOL_PODS"] == f"{RELEASE}-crews-vllm-pods:8000"
    # A role's labels: the role policies (NATS, Redis, the pool, vLLM's ingress) select it.
    labels = pod["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "role"
    assert labels["crews.dev/helm-test"] == "true"
    for name in ("allow-bus", "allow-llm"):
        selector = by_name(objects, "NetworkPolicy", f"{RELEASE}-crews-{name}")["spec"]["podSelector"]
        assert selector["matchLabels"].items() <= labels.items()
    # Its own policy (a hook) adds egress to the API pods only.
    policy = by_name(objects, "NetworkPolicy", NAME)
    validate(policy)
    assert policy["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    [rule] = policy["spec"]["egress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8080}]
    assert rule["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "api"


def test_without_crews_the_hook_uses_the_apis_nats_user_and_the_jobs_stream() -> None:
    env = pod_env(hook_pod(render({})))
    assert env["CREWS_NATS_URL"] == {"secretKeyRef": {"name": f"{RELEASE}-crews-api-nats", "key": "url"}}
    assert env["CREWS_TEST_STREAM"] == "CREWS_JOBS"


def test_the_hook_follows_external_endpoints_no_auth_and_restricted_api_callers() -> None:
    values = {
        **example_values(),
        "vllm": {"enabled": False},
        "llm": {"urls": ["https://llm.example.com/v1"], "apiKeySecret": {"name": "llm-key"}},
        "nats": {"auth": {"enabled": False}},
        "networkPolicy": {"apiFrom": [{"namespaceSelector": {"matchLabels": {"team": "web"}}}]},
    }
    objects = render(values)
    env = pod_env(hook_pod(objects))
    assert env["CREWS_NATS_URL"] == "nats://nats:4222"
    assert env["CREWS_LLM_URLS"] == "https://llm.example.com/v1"
    assert env["CREWS_LLM_API_KEY"] == {"secretKeyRef": {"name": "llm-key", "key": "api-key"}}
    assert "CREWS_TEST_POOL_PODS" not in env
    api_from = by_name(objects, "NetworkPolicy", f"{RELEASE}-crews-allow-api")["spec"]["ingress"][0]["from"]
    assert {"podSelector": {"matchLabels": {**_release(), "crews.dev/helm-test": "true"}}} in api_from
    for obj in objects:
        validate(obj)


def test_the_hook_can_be_turned_off() -> None:
    objects = render({**example_values(), "helmTest": {"enabled": False}})
    assert of_kind(objects, "Pod") == []
    assert not [o for o in objects if "helm.sh/hook" in o["metadata"].get("annotations", {})]


def _release() -> dict[str, str]:
    return {"app.kubernetes.io/name": "crews", "app.kubernetes.io/instance": RELEASE}
