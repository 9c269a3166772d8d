"""The Helm chart, rendered by Helm's engine: lint, schemas, and the names the processes use."""

from __future__ import annotations

import json
import math
from typing import Any

import helm_python as helm
import pytest
import yaml

from bus import subjects
from crews.deploy.helm_values import SCALING_POLICY, bus_values
from crews.spec.load import load_crew
from tests.chart.render import (
    CHART,
    EXAMPLES,
    NAMESPACE,
    PAYMENTS,
    PUBLIC,
    RELEASE,
    Obj,
    by_name,
    example_values,
    of_kind,
    render,
    render_files,
    validate,
)

ROLE_LABEL = "crews.dev/role-id"


@pytest.fixture(scope="module")
def values() -> Obj:
    return example_values()


@pytest.fixture(scope="module")
def objects(values: Obj) -> list[Obj]:
    return render(values)


def role_objects(objects: list[Obj], kind: str, crew: str, role: str) -> Obj:
    found = [
        o
        for o in of_kind(objects, kind)
        if o["metadata"].get("annotations", {}).get("crews.dev/crew") == crew
        and o["metadata"]["annotations"].get("crews.dev/role") == role
    ]
    assert len(found) == 1, f"expected one {kind} for {crew}/{role}, found {len(found)}"
    return found[0]


def container(deployment: Obj) -> Obj:
    containers: list[Obj] = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env_of(deployment: Obj) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(deployment)["env"]}


VARIANTS: dict[str, Obj] = {
    "defaults (no crews)": {},
    "external LLM, no KEDA, no NATS auth": {
        "vllm": {"enabled": False},
        "llm": {"urls": ["https://llm.example.com/v1", "https://llm2.example.com/v1"]},
        "keda": {"enabled": False},
        "nats": {"auth": {"enabled": False}},
    },
    "ingress, API HPA, existing secrets, no NetworkPolicies": {
        "api": {
            "ingress": {"enabled": True, "className": "nginx", "tls": [{"hosts": ["crews.example.com"]}]},
            "autoscaling": {"enabled": True},
            "existingKeysSecret": "my-keys",
        },
        "redis": {"existingSecret": "my-redis"},
        "networkPolicy": {"enabled": False},
        "vllm": {"autoscaling": {"enabled": False}},
    },
}


def test_lint_is_clean(values: Obj) -> None:
    for given in (None, values):
        report = helm.lint(CHART, given, strict=True, namespace=NAMESPACE)
        assert report["errors"] == [], report
        assert [m for m in report["messages"] if m["severity"] >= 2] == [], report


def test_every_object_from_the_examples_is_valid(objects: list[Obj]) -> None:
    assert objects
    for obj in objects:
        validate(obj)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_object_of_each_variant_is_valid(values: Obj, variant: str) -> None:
    objects = render({**values, **VARIANTS[variant]})
    assert len(of_kind(objects, "Deployment")) > 2  # api, coordinator and the roles: never an empty render
    for obj in objects:
        validate(obj)


def test_each_example_renders_alone() -> None:
    from crews.deploy.helm_values import chart_values

    for path in EXAMPLES:
        spec = load_crew(path)
        values = dict(chart_values([spec]))
        if spec.name == "support":
            values["mcpServers"] = {"payments": PAYMENTS}
        objects = render(values)
        for obj in objects:
            validate(obj)
        assert len(of_kind(objects, "ScaledObject")) == len(spec.all_roles()) + 1  # + the vLLM pool


def test_each_role_scales_on_the_stream_and_consumer_its_workers_use(objects: list[Obj]) -> None:
    seen = 0
    for path in EXAMPLES:
        spec = load_crew(path)
        for key, role in spec.all_roles().items():
            scaled = role_objects(objects, "ScaledObject", spec.name, key)
            deployment = role_objects(objects, "Deployment", spec.name, key)
            so = scaled["spec"]
            assert so["scaleTargetRef"] == {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": deployment["metadata"]["name"],
            }
            [trigger] = so["triggers"]
            assert trigger["type"] == "nats-jetstream"
            meta = trigger["metadata"]
            assert meta["stream"] == subjects.TASKS_STREAM
            assert meta["consumer"] == subjects.role_consumer(spec.name, key)
            assert meta["account"] == "CREWS"
            assert meta["natsServerMonitoringEndpoint"] == "nats:8222"
            assert meta["lagThreshold"] == str(role.scaling.target_queue_depth)
            assert (so["minReplicaCount"], so["maxReplicaCount"]) == (role.scaling.min, role.scaling.max)
            assert so["fallback"] == {
                "failureThreshold": SCALING_POLICY.fallback_failure_threshold,
                "replicas": max(1, role.scaling.min),
            }
            assert so["cooldownPeriod"] == SCALING_POLICY.cooldown_s
            assert so["pollingInterval"] == SCALING_POLICY.polling_interval_s
            behavior = so["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
            assert behavior["scaleDown"]["stabilizationWindowSeconds"] == SCALING_POLICY.cooldown_s
            seen += 1
    assert seen == len(of_kind(objects, "ScaledObject")) - 1  # every other one is the vLLM pool's


def test_each_role_runs_its_own_workers(objects: list[Obj], values: Obj) -> None:
    accounts = {o["metadata"]["name"] for o in of_kind(objects, "ServiceAccount")}
    default_step = 600
    for path in EXAMPLES:
        spec = load_crew(path)
        for key, role in spec.all_roles().items():
            deployment = role_objects(objects, "Deployment", spec.name, key)
            pod = deployment["spec"]["template"]["spec"]
            worker = container(deployment)
            assert worker["command"] == ["crews", "role", f"{spec.name}/{key}"]
            step = role.max_execution_time or default_step
            assert pod["terminationGracePeriodSeconds"] >= math.ceil(step)
            env = env_of(deployment)
            assert float(env["CREWS_WORKER_GRACE_S"]) == step
            assert env["CREWS_LLM_URLS"] == f"http://{RELEASE}-crews-vllm:8000/v1"
            assert env["CREWS_NATS_URL"] == {
                "secretKeyRef": {"name": f"{deployment['metadata']['name']}-nats", "key": "url"}
            }
            for probe in ("readinessProbe", "livenessProbe"):
                assert worker[probe]["exec"]["command"][-2:] == [
                    "/etc/crews/probes/nats_connected.py",
                    "4222",
                ]
            assert worker["resources"] == values.get("roleDefaults", {}).get("resources", worker["resources"])
            assert worker["resources"]["requests"]
            assert pod["serviceAccountName"] == deployment["metadata"]["name"]
            assert pod["serviceAccountName"] in accounts
            assert "replicas" not in deployment["spec"]  # KEDA owns the replica count


def test_max_execution_time_sets_the_grace_period(values: Obj) -> None:
    crew = values["crews"]["research"]
    crew["roles"]["writer"]["maxExecutionTime"] = 1234.5
    try:
        objects = render(values)
    finally:
        del crew["roles"]["writer"]["maxExecutionTime"]
    pod = role_objects(objects, "Deployment", "research", "writer")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 1235 + 30
    assert (
        env_of(role_objects(objects, "Deployment", "research", "writer"))["CREWS_WORKER_GRACE_S"] == "1234.5"
    )


def test_one_service_account_per_component(objects: list[Obj]) -> None:
    deployments = of_kind(objects, "Deployment")
    accounts = [d["spec"]["template"]["spec"]["serviceAccountName"] for d in deployments]
    assert len(accounts) == len(set(accounts)) == len(of_kind(objects, "ServiceAccount"))
    for account in of_kind(objects, "ServiceAccount"):
        assert account["automountServiceAccountToken"] is False


def test_network_policies_deny_by_default(objects: list[Obj]) -> None:
    policies = of_kind(objects, "NetworkPolicy")
    deny = by_name(policies, "NetworkPolicy", f"{RELEASE}-crews-default-deny")
    assert deny["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny["spec"] and "egress" not in deny["spec"]
    selector = deny["spec"]["podSelector"]
    assert selector.keys() == {"matchLabels"}
    for deployment in of_kind(objects, "Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector["matchLabels"].items() <= labels.items(), deployment["metadata"]["name"]
    # Only the API, vLLM and MCP servers take connections; the coordinator and the workers take none.
    ingress_to = {
        p["spec"]["podSelector"]["matchLabels"].get("app.kubernetes.io/component")
        for p in policies
        if "ingress" in p["spec"]
    }
    assert ingress_to == {"api", "vllm", "mcp-server"}


def test_vllm_pool_on_gpus_scales_on_waiting_requests(objects: list[Obj]) -> None:
    deployment = by_name(objects, "Deployment", f"{RELEASE}-crews-vllm")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["nodeSelector"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    vllm = container(deployment)
    assert vllm["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert vllm["command"] == ["vllm", "serve"]
    args = vllm["args"]
    assert args[args.index("--served-model-name") + 1] == "crews-local"
    assert {"--enable-auto-tool-choice", "hermes"} <= set(args)
    by_name(objects, "Service", f"{RELEASE}-crews-vllm")
    so = by_name(objects, "ScaledObject", f"{RELEASE}-crews-vllm")["spec"]
    [trigger] = so["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metadata"]["query"].startswith("sum(vllm:num_requests_waiting{")
    assert "fallback" in so


def test_external_llm_endpoints_replace_the_pool(values: Obj) -> None:
    urls = ["https://llm.example.com/v1", "https://llm2.example.com/v1"]
    objects = render({**values, "vllm": {"enabled": False}, "llm": {"urls": urls}})
    assert not [o for o in objects if "vllm" in o["metadata"]["name"]]
    roles = [
        deployment
        for deployment in of_kind(objects, "Deployment")
        if deployment["metadata"]["labels"]["app.kubernetes.io/component"] == "role"
    ]
    assert roles
    for deployment in roles:
        assert env_of(deployment)["CREWS_LLM_URLS"] == ",".join(urls)


def test_without_keda_each_role_runs_its_min_at_least_one(values: Obj) -> None:
    objects = render({**values, "keda": {"enabled": False}})
    assert of_kind(objects, "ScaledObject") == []
    assert role_objects(objects, "Deployment", "research", "researcher")["spec"]["replicas"] == 1  # min 0
    assert role_objects(objects, "Deployment", "fanout", "analyst")["spec"]["replicas"] == 1


def test_values_yaml_uses_the_bus_names_and_the_scaling_policy() -> None:
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    assert defaults["bus"] == dict(bus_values())
    assert defaults["keda"]["cooldownPeriod"] == SCALING_POLICY.cooldown_s
    assert defaults["keda"]["pollingInterval"] == SCALING_POLICY.polling_interval_s
    assert defaults["keda"]["fallback"]["failureThreshold"] == SCALING_POLICY.fallback_failure_threshold


@pytest.mark.parametrize(
    ("bad", "where"),
    [
        ({"vllm": {"enabled": False}}, "/llm/urls"),
        ({"crews": {"x": {"roles": {}}}}, "/crews/x/roles"),
        (
            {"crews": {"x": {"roles": {"r": {"scaling": {"min": 0, "max": 1, "targetQueueDepth": 1}}}}}},
            "/crews/x/roles/r",
        ),
        ({"crews": {"bad.name": {"roles": {}}}}, "/crews"),
        ({"keda": {"cooldownPeriod": 7200}}, "/keda/cooldownPeriod"),
        ({"nats": {"url": "nats://user:secret@nats:4222"}}, "/nats/url"),
        ({"vllm": {"autoscaling": {"minReplicas": 0}}}, "/vllm/autoscaling/minReplicas"),
        ({"roleDefualts": {}}, "roleDefualts"),
    ],
)
def test_schema_rejects_bad_values(bad: Obj, where: str) -> None:
    with pytest.raises(helm.HelmError, match=where):
        render_files(bad)


def test_notes_name_the_crews(values: Obj) -> None:
    notes = render_files(values)["crews/templates/NOTES.txt"]
    assert "demo, fanout, hierarchical, research, support (12 role workers)" in notes
    assert f"{RELEASE}-crews-nats-accounts" in notes


def test_api_listens_on_all_addresses_and_never_runs_open(objects: list[Obj]) -> None:
    api = by_name(objects, "Deployment", f"{RELEASE}-crews-api")
    env = env_of(api)
    assert (env["CREWS_API_HOST"], env["CREWS_API_PORT"]) == ("0.0.0.0", "8080")
    assert container(api)["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container(api)["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    keys = by_name(objects, "Secret", f"{RELEASE}-crews-api-keys")["stringData"]["api-keys"]
    assert len(keys) == 40  # none given: one random key
    given = render({"api": {"keys": ["k1", "k2"]}})
    assert by_name(given, "Secret", f"{RELEASE}-crews-api-keys")["stringData"]["api-keys"] == "k1,k2"


MCP_NAME = f"{RELEASE}-crews-mcp-payments"


def test_an_mcp_server_runs_with_its_own_account_service_and_secrets(objects: list[Obj]) -> None:
    deployment = by_name(objects, "Deployment", MCP_NAME)
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == MCP_NAME and pod["automountServiceAccountToken"] is False
    assert by_name(objects, "ServiceAccount", MCP_NAME)["automountServiceAccountToken"] is False
    server = container(deployment)
    assert server["image"] == "ghcr.io/example/payments-mcp:1.0" and server["args"] == PAYMENTS["args"]
    assert env_of(deployment)["PAYMENTS_API_KEY"] == {"secretKeyRef": {"name": "payments", "key": "api-key"}}
    assert server["securityContext"]["readOnlyRootFilesystem"] is True
    service = by_name(objects, "Service", MCP_NAME)
    assert [p["port"] for p in service["spec"]["ports"]] == [8000]
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_only_the_roles_that_name_an_mcp_server_and_the_api_are_declared_it(objects: list[Obj]) -> None:
    agent = role_objects(objects, "Deployment", "support", "agent")
    env = env_of(agent)
    declared = json.loads(env["CREWS_MCP_SERVERS"])
    assert declared == {
        "payments": {
            "url": f"http://{MCP_NAME}:8000/mcp",
            "headers_from": {"Authorization": "CREWS_MCP_PAYMENTS_HEADER_0"},
            "approval": {"refund": "required"},
            "timeout_s": 30,
        }
    }
    assert env["CREWS_MCP_PAYMENTS_HEADER_0"] == {"secretKeyRef": {"name": "payments", "key": "mcp-auth"}}
    assert "CREWS_MCP_SERVERS" not in env_of(role_objects(objects, "Deployment", "research", "writer"))
    api = by_name(objects, "Deployment", f"{RELEASE}-crews-api")
    assert json.loads(env_of(api)["CREWS_MCP_SERVERS"]) == declared


def test_network_policies_let_only_its_roles_reach_an_mcp_server_which_has_no_egress(
    objects: list[Obj], values: Obj
) -> None:
    from tests.chart.render import render as render_values

    agent_id = role_objects(objects, "Deployment", "support", "agent")["metadata"]["labels"][ROLE_LABEL]
    server = by_name(objects, "NetworkPolicy", MCP_NAME)["spec"]
    assert server["policyTypes"] == ["Ingress", "Egress"] and server["egress"] == []
    [rule] = server["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8000}]
    sources = [peer["podSelector"] for peer in rule["from"]]
    assert sources[0]["matchLabels"]["app.kubernetes.io/component"] == "api"
    assert sources[1]["matchLabels"]["app.kubernetes.io/component"] == "role"
    assert sources[1]["matchExpressions"] == [{"key": ROLE_LABEL, "operator": "In", "values": [agent_id]}]
    clients = by_name(objects, "NetworkPolicy", f"{MCP_NAME}-clients")["spec"]
    assert {"key": ROLE_LABEL, "operator": "In", "values": [agent_id]} in clients["podSelector"][
        "matchExpressions"
    ]
    dns = by_name(objects, "NetworkPolicy", f"{RELEASE}-crews-allow-dns")["spec"]["podSelector"]
    assert {"key": "app.kubernetes.io/component", "operator": "NotIn", "values": ["mcp-server"]} in dns[
        "matchExpressions"
    ]
    declared = {**values, "mcpServers": {"payments": {**PAYMENTS, "egress": [{"ports": [{"port": 443}]}]}}}
    opened = by_name(render_values(declared), "NetworkPolicy", MCP_NAME)["spec"]
    assert opened["egress"] == [{"ports": [{"port": 443}], "to": PUBLIC}]  # a rule without `to`: public only


def test_a_role_naming_an_undeclared_mcp_server_does_not_render(values: Obj) -> None:
    with pytest.raises(Exception, match="mcpServers does not declare"):
        render({**values, "mcpServers": {}})
