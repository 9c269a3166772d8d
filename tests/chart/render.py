"""Render the chart with Helm's own engine (helm-python-sdk wraps Helm's Go SDK) and check objects.

- ``render(values)`` → every object the chart renders, parsed (NOTES.txt left out).
- ``validate(obj)`` → the object against the Kubernetes schemas (``kubernetes-validate``, strict:
  unknown fields are errors) or, for a ScaledObject, against KEDA's CRD schema (vendored in
  ``schemas/``, closed the same way), plus Kubernetes' name and label rules.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "crews"
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
SCHEMAS = Path(__file__).with_name("schemas")
RELEASE, NAMESPACE = "demo", "crews"
KUBE_VERSIONS = ("1.27", kubernetes_validate.latest_version())

Obj = dict[str, Any]

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
# Names that become DNS labels (Service host names, pod name prefixes).
_LABEL_NAMED = {"Service", "Deployment", "ServiceAccount"}


def render_files(values: Obj | None = None) -> dict[str, str]:
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(values or {})
        return chart.render(values or {}, name=RELEASE, namespace=NAMESPACE, is_install=True)


def render(values: Obj | None = None) -> list[Obj]:
    objects: list[Obj] = []
    for path, text in render_files(values).items():
        if path.endswith("NOTES.txt"):
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def of_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def by_name(objects: list[Obj], kind: str, name: str) -> Obj:
    found = [o for o in of_kind(objects, kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} named {name}, found {len(found)}"
    return found[0]


@cache
def keda_scaledobject_schema() -> Obj:
    crd = yaml.safe_load((SCHEMAS / "keda.sh_scaledobjects.v1alpha1.yaml").read_text())
    return _closed(crd["openAPIV3Schema"])


def _closed(node: Any) -> Any:
    """OpenAPI → JSON schema as the API server's strict field validation sees it.

    An object with listed properties and no ``additionalProperties`` accepts no other field
    (the API server prunes or, with fieldValidation=Strict, rejects unknown fields).
    """
    if isinstance(node, list):
        return [_closed(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _closed(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def validate(obj: Obj) -> None:
    """Raise if ``obj`` is not a valid object of its kind (every Kubernetes version we support)."""
    if obj["apiVersion"] == "keda.sh/v1alpha1":
        assert obj["kind"] == "ScaledObject", f"unexpected KEDA kind {obj['kind']}"
        jsonschema.Draft202012Validator(keda_scaledobject_schema()).validate(obj)
    else:
        for version in KUBE_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)
    _check_names(obj)


def _check_names(obj: Obj) -> None:
    meta = obj["metadata"]
    name = meta["name"]
    pattern, limit = (_DNS_LABEL, 63) if obj["kind"] in _LABEL_NAMED else (_DNS_SUBDOMAIN, 253)
    assert pattern.fullmatch(name) and len(name) <= limit, f"{obj['kind']} name {name!r} is not valid"
    labels = [meta.get("labels", {})]
    template = obj.get("spec", {}).get("template", {}).get("metadata", {})
    labels.append(template.get("labels", {}))
    for key, value in (item for group in labels for item in group.items()):
        assert len(value) <= 63 and _LABEL_VALUE.fullmatch(value), f"label {key}={value!r} on {name}"


METADATA = ["169.254.0.0/16", "fd00:ec2::254/128", "fe80::/10"]
"""Link-local and metadata ranges (169.254.169.254 is in the first): excepted from every ipBlock."""
PRIVATE_V4 = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8"]
PUBLIC: list[Obj] = [
    {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.0.0/16", *PRIVATE_V4]}},
    {"ipBlock": {"cidr": "::/0", "except": ["fd00:ec2::254/128", "fe80::/10", "fc00::/7", "::1/128"]}},
]
"""The public internet as NetworkPolicy peers: what an egress rule without `to` is sent to."""


PAYMENTS: Obj = {
    "image": {"repository": "ghcr.io/example/payments-mcp", "tag": "1.0"},
    "args": ["--host", "0.0.0.0", "--port", "8000", "--ledger", "/tmp/ledger.json"],
    "port": 8000,
    "envFromSecrets": {"PAYMENTS_API_KEY": {"name": "payments", "key": "api-key"}},
    "headersFromSecrets": {"Authorization": {"name": "payments", "key": "mcp-auth"}},
    "approval": {"refund": "required"},
}
"""The operator's declaration of the MCP server the support example uses."""


def example_values() -> Obj:
    """What `crews helm values examples/*.yaml` prints, read back, with the MCP server support.yaml uses."""
    from typer.testing import CliRunner

    from crews.cli.main import app

    result = CliRunner().invoke(app, ["helm", "values", *map(str, EXAMPLES)])
    assert result.exit_code == 0, result.output
    values: Obj = yaml.safe_load(result.stdout)
    values["mcpServers"] = {"payments": PAYMENTS}
    return values
