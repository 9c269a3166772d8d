"""The chart's images and placement: which image each pod runs, GPU nodes for vLLM only, non-root read-only pods."""

from __future__ import annotations

import copy

import pytest

from tests.chart.render import RELEASE, Obj, by_name, example_values, of_kind, render, validate

GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
OFF_GPU = {
    "requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [
            {"matchExpressions": [{"key": "nvidia.com/gpu.present", "operator": "NotIn", "values": ["true"]}]}
        ]
    }
}


@pytest.fixture(scope="module")
def values() -> Obj:
    """The examples' values with one role switched to engine crewai."""
    values = copy.deepcopy(example_values())
    values["crews"]["research"]["roles"]["writer"]["engine"] = "crewai"
    return values


@pytest.fixture(scope="module")
def objects(values: Obj) -> list[Obj]:
    return render(values)


def component(obj: Obj) -> str:
    label: str = obj["metadata"]["labels"]["app.kubernetes.io/component"]
    return label


def crews_deployments(objects: list[Obj]) -> list[Obj]:
    found = [
        d for d in of_kind(objects, "Deployment") if component(d) not in ("vllm", "mcp-server")
    ]  # tool pods: the operator's images
    assert {component(d) for d in found} == {"api", "coordinator", "role"}
    return found


def test_each_pod_runs_the_image_of_its_engine(objects: list[Obj], values: Obj) -> None:
    images: dict[object, str] = {}
    for deployment in crews_deployments(objects):
        annotations = deployment["metadata"].get("annotations", {})
        key = (
            (annotations["crews.dev/crew"], annotations["crews.dev/role"])
            if annotations
            else component(deployment)
        )
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        images[key] = container["image"]
    assert images[("research", "writer")] == "crews-crewai:0.1.0"
    others = {k: v for k, v in images.items() if k != ("research", "writer")}
    roles = sum(len(crew["roles"]) for crew in values["crews"].values())
    assert len(others) == 2 + roles - 1  # api, coordinator and every other role
    assert set(others.values()) == {"crews:0.1.0"}
    [pod] = of_kind(objects, "Pod")
    assert pod["spec"]["containers"][0]["image"] == "crews:0.1.0"


def test_image_values_name_repository_and_tag() -> None:
    objects = render(
        {
            **example_values(),
            "image": {"repository": "registry.example.com/crews", "tag": "1.2.3"},
            "crewaiImage": {
                "repository": "registry.example.com/crews-crewai",
                "tag": "1.2.3",
                "pullPolicy": "Always",
            },
        }
    )
    deployment = by_name(objects, "Deployment", f"{RELEASE}-crews-api")
    assert (
        deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example.com/crews:1.2.3"
    )


def test_vllm_requests_gpus_tolerates_their_taint_and_selects_gpu_nodes(objects: list[Obj]) -> None:
    pod = by_name(objects, "Deployment", f"{RELEASE}-crews-vllm")["spec"]["template"]["spec"]
    [vllm] = pod["containers"]
    assert vllm["resources"]["requests"]["nvidia.com/gpu"] == 1
    assert vllm["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert GPU_TOLERATION in pod["tolerations"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert "affinity" not in pod  # the off-GPU affinity is for crews pods only


def test_crews_pods_stay_off_gpu_nodes(objects: list[Obj]) -> None:
    for deployment in crews_deployments(objects):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["affinity"]["nodeAffinity"] == OFF_GPU, deployment["metadata"]["name"]
        assert GPU_TOLERATION not in pod.get("tolerations", [])
        assert "nvidia.com/gpu" not in str(pod["containers"][0].get("resources"))


def test_a_components_own_affinity_is_kept_and_its_node_affinity_wins(values: Obj) -> None:
    anti = {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}}
    own_nodes = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}}
    objects = render({**values, "api": {"affinity": anti}, "coordinator": {"affinity": own_nodes}})
    api = by_name(objects, "Deployment", f"{RELEASE}-crews-api")["spec"]["template"]["spec"]
    assert api["affinity"] == {**anti, "nodeAffinity": OFF_GPU}
    coordinator = by_name(objects, "Deployment", f"{RELEASE}-crews-coordinator")["spec"]["template"]["spec"]
    assert coordinator["affinity"] == own_nodes
    off = render({**values, "gpuNodes": {"keepCrewsOff": False, "label": "x", "values": ["y"]}})
    for deployment in crews_deployments(off):
        assert "affinity" not in deployment["spec"]["template"]["spec"]


def test_the_pool_has_a_headless_service_for_every_pod(objects: list[Obj]) -> None:
    headless = by_name(objects, "Service", f"{RELEASE}-crews-vllm-pods")
    deployment = by_name(objects, "Deployment", f"{RELEASE}-crews-vllm")
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is False
    assert (
        headless["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    )
    assert headless["spec"]["ports"] == [
        {"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}
    ]
    assert by_name(objects, "Service", f"{RELEASE}-crews-vllm")["spec"].get("clusterIP") is None  # unchanged


def test_crews_pods_run_non_root_with_a_read_only_root_and_a_tmp_volume(objects: list[Obj]) -> None:
    pods = [d["spec"]["template"]["spec"] for d in crews_deployments(objects)]
    pods += [p["spec"] for p in of_kind(objects, "Pod")]
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001  # the images' user
        [container] = pod["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
        assert len(tmp) == 1
        [volume] = [v for v in pod["volumes"] if v["name"] == tmp[0]["name"]]
        assert volume == {"name": tmp[0]["name"], "emptyDir": {}}


def test_every_object_with_a_crewai_role_is_valid(objects: list[Obj]) -> None:
    assert objects
    for obj in objects:
        validate(obj)
