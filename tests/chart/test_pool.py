"""The chart's LLM pool wiring: workers discover the vLLM pods through the headless Service, and the overflow.

Each check renders the chart with Helm's engine and then builds the workers' ``InferenceSettings``
from the rendered environment (Secret references filled in), so what the chart writes is what
the pool client accepts.
"""

from __future__ import annotations

import copy
from typing import Any

import helm_python as helm
import pytest

from inference.settings import InferenceSettings
from tests.chart.render import RELEASE, Obj, by_name, example_values, of_kind, render, render_files, validate

HEADLESS = f"{RELEASE}-crews-vllm-pods"
OVERFLOW: Obj = {
    "enabled": True,
    "url": "https://api.openai.com/v1",
    "model": "gpt-4o-mini",
    "apiKeySecret": {"name": "openai", "key": "token"},
    "price": {"input_per_mtok": 0.15, "output_per_mtok": 0.6},
    "startWaiting": 12,
    "stopWaiting": 3,
    "to": [{"ipBlock": {"cidr": "162.159.140.0/24"}}],
}


@pytest.fixture(scope="module")
def values() -> Obj:
    return example_values()


def with_llm(values: Obj, **llm: Any) -> Obj:
    changed = copy.deepcopy(values)
    changed["llm"] = {**changed.get("llm", {}), **llm}
    return changed


def workers(objects: list[Obj]) -> list[Obj]:
    found = [
        d
        for d in of_kind(objects, "Deployment")
        if d["metadata"]["labels"]["app.kubernetes.io/component"] == "role"
    ]
    assert found
    return found


def env_of(deployment: Obj) -> dict[str, Any]:
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def settings_from(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch, secrets: dict[str, str]
) -> InferenceSettings:
    """The worker's InferenceSettings: plain values as rendered, Secret references from ``secrets``."""
    for name, value in env.items():
        if isinstance(value, str):
            monkeypatch.setenv(name, value)
        elif name in secrets:
            monkeypatch.setenv(name, secrets[name])
    return InferenceSettings()


def test_workers_discover_every_vllm_pod_through_the_headless_service(
    values: Obj, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = render(values)
    headless = by_name(objects, "Service", HEADLESS)
    assert headless["spec"]["clusterIP"] == "None"
    [port] = headless["spec"]["ports"]
    for deployment in workers(objects):
        env = env_of(deployment)
        assert env["CREWS_LLM_DISCOVER"] == f"http://{HEADLESS}:{port['port']}/v1"
        assert env["CREWS_LLM_DISCOVER_INTERVAL_S"] == "5"
    settings = settings_from(env, monkeypatch, {})
    assert settings.llm_discover == f"http://{HEADLESS}:8000/v1"
    assert settings.llm_overflow_url == ""
    # the workers may reach each pod directly (not only through the ClusterIP Service)
    allow = by_name(objects, "NetworkPolicy", f"{RELEASE}-crews-allow-llm")["spec"]["egress"]
    assert allow[0]["ports"] == [{"protocol": "TCP", "port": 8000}]
    assert allow[0]["to"][0]["podSelector"]["matchLabels"].items() <= headless["spec"]["selector"].items()
    assert (
        "every pod behind http://demo-crews-vllm-pods:8000/v1"
        in render_files(values)["crews/templates/NOTES.txt"]
    )


@pytest.mark.parametrize(
    "change",
    [
        {"llm": {"discover": False}},
        {"vllm": {"headlessService": False}},
        {"vllm": {"enabled": False}, "llm": {"urls": ["https://llm.example.com/v1"]}},
    ],
    ids=["discover off", "no headless Service", "external endpoints"],
)
def test_without_the_headless_pool_workers_use_the_urls(values: Obj, change: Obj) -> None:
    changed = copy.deepcopy(values)
    for block, fields in change.items():
        changed[block] = {**changed.get(block, {}), **fields}
    for deployment in workers(render(changed)):
        env = env_of(deployment)
        assert "CREWS_LLM_DISCOVER" not in env
        assert env["CREWS_LLM_URLS"]


def test_the_overflow_reaches_the_workers_with_its_key_and_price(
    values: Obj, monkeypatch: pytest.MonkeyPatch
) -> None:
    prices = {"crews-local": {"input_per_mtok": 0.2, "output_per_mtok": 0.4}}
    objects = render(with_llm(values, overflow=OVERFLOW, prices=prices))
    for obj in objects:
        validate(obj)
    env = env_of(workers(objects)[0])
    assert env["CREWS_LLM_OVERFLOW_KEY"] == {"secretKeyRef": {"name": "openai", "key": "token"}}
    assert env["CREWS_LLM_OVERFLOW_API_KEY_ENV"] == "CREWS_LLM_OVERFLOW_KEY"
    settings = settings_from(env, monkeypatch, {"CREWS_LLM_OVERFLOW_KEY": "sk-from-the-secret"})
    assert (settings.llm_overflow_url, settings.llm_overflow_model) == (
        "https://api.openai.com/v1",
        "gpt-4o-mini",
    )
    assert settings.overflow_api_key() == "sk-from-the-secret"
    assert (settings.llm_overflow_start_waiting, settings.llm_overflow_stop_waiting) == (12, 3)
    assert settings.llm_overflow_drop_params == ["repetition_penalty"]
    assert settings.llm_metrics_interval_s == 2
    assert settings.llm_prices["gpt-4o-mini"].model_dump() == OVERFLOW["price"]
    assert settings.llm_prices["crews-local"].model_dump() == prices["crews-local"]
    assert settings.llm_discover == f"http://{HEADLESS}:8000/v1"
    # egress to the managed API, on its port and to its peers only, beside the pool's pods
    egress = by_name(objects, "NetworkPolicy", f"{RELEASE}-crews-allow-llm")["spec"]["egress"]
    assert egress[1] == {"ports": [{"protocol": "TCP", "port": 443}], "to": OVERFLOW["to"]}
    notes = render_files(with_llm(values, overflow=OVERFLOW))["crews/templates/NOTES.txt"]
    assert "Overflow: gpt-4o-mini at https://api.openai.com/v1 from 12 requests waiting" in notes


def test_without_an_overflow_the_workers_have_no_overflow_settings(values: Obj) -> None:
    env = env_of(workers(render(values))[0])
    assert not [name for name in env if "OVERFLOW" in name]
    assert "CREWS_LLM_PRICES" not in env
    egress = by_name(render(values), "NetworkPolicy", f"{RELEASE}-crews-allow-llm")["spec"]["egress"]
    assert len(egress) == 1


@pytest.mark.parametrize("missing", ["url", "model", "apiKeySecret", "price"])
def test_an_enabled_overflow_needs_its_url_model_key_and_price(missing: str) -> None:
    overflow = {k: v for k, v in OVERFLOW.items() if k != missing}
    with pytest.raises(helm.HelmError, match="/llm/overflow"):
        render_files({"llm": {"model": "crews-local", "overflow": overflow}})
