"""The rendered NetworkPolicies' egress: in-cluster by default, outside addresses only where declared, never metadata."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import pytest

from tests.chart.render import (
    METADATA,
    PUBLIC,
    RELEASE,
    Obj,
    by_name,
    example_values,
    of_kind,
    render,
    validate,
)

METADATA_ADDRESSES = [ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")]


@pytest.fixture(scope="module")
def values() -> Obj:
    return example_values()


def _egress(objects: list[Obj], name: str) -> list[Obj]:
    rules: list[Obj] = by_name(objects, "NetworkPolicy", f"{RELEASE}-crews-{name}")["spec"]["egress"]
    return rules


def _reachable(block: Obj, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether an ipBlock lets traffic to ``address`` through, as a CNI reads it."""
    cidr = ipaddress.ip_network(block["cidr"])
    if address.version != cidr.version or address not in cidr:
        return False
    return not any(address in ipaddress.ip_network(e) for e in block.get("except", []))


def _every_ip_block(objects: list[Obj]) -> list[Obj]:
    blocks: list[Obj] = []
    for policy in of_kind(objects, "NetworkPolicy"):
        for rule in policy["spec"].get("egress", []):
            assert rule.get("to"), f"{policy['metadata']['name']}: a rule to any address"
            blocks.extend(peer["ipBlock"] for peer in rule["to"] if "ipBlock" in peer)
    return blocks


def test_nats_and_redis_are_reached_in_the_cluster_only_by_default(values: Obj) -> None:
    nats, redis = _egress(render(values), "allow-bus")
    assert nats == {
        "ports": [{"protocol": "TCP", "port": 4222}],
        "to": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "nats"}}}],
    }
    assert redis == {
        "ports": [{"protocol": "TCP", "port": 6379}],
        "to": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "redis"}}}],
    }


def test_an_outside_nats_or_redis_is_an_ip_block_without_the_metadata_range(values: Obj) -> None:
    policy = {
        "nats": {"podLabels": None, "cidrs": ["10.20.0.0/16"]},  # null drops the default labels
        "redis": {
            "podLabels": {"app.kubernetes.io/name": "valkey"},
            "namespace": "data",
            "cidrs": ["0.0.0.0/0"],
        },
    }
    objects = render({**values, "networkPolicy": policy})
    nats, redis = _egress(objects, "allow-bus")
    assert nats["to"] == [{"ipBlock": {"cidr": "10.20.0.0/16"}}]  # a private address, as declared
    assert redis["to"] == [
        {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "valkey"}},
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "data"}},
        },
        {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.0.0/16"]}},  # private allowed, metadata never
    ]
    for obj in of_kind(objects, "NetworkPolicy"):
        validate(obj)


def test_the_external_llm_defaults_to_the_cluster_and_takes_declared_addresses(values: Obj) -> None:
    external = {**values, "vllm": {"enabled": False}, "llm": {"urls": ["https://llm.example.com/v1"]}}
    [rule] = _egress(render(external), "allow-llm")
    assert rule == {"ports": [{"protocol": "TCP", "port": 443}], "to": [{"namespaceSelector": {}}]}
    declared = {**external, "networkPolicy": {"llm": {"cidrs": ["2001:db8::/32", "203.0.113.0/24"]}}}
    [rule] = _egress(render(declared), "allow-llm")
    assert rule["to"] == [{"ipBlock": {"cidr": "2001:db8::/32"}}, {"ipBlock": {"cidr": "203.0.113.0/24"}}]


def test_no_rendered_ip_block_reaches_a_metadata_address(values: Obj) -> None:
    """Every egress rule names its peers, and none of its ipBlocks lets a metadata address through."""
    agents = {
        "public": {"url": "http://agent.example.com"},
        "inside": {"url": "https://agent.internal:9443", "allowPrivate": True, "cidrs": ["10.0.0.0/8"]},
        "raw": {"url": "https://raw.example.com", "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]},
    }
    crews = values["crews"]
    roles = [(c, r) for c in crews for r in crews[c]["roles"]][:3]
    variant: dict[str, Any] = {
        **values,
        "crews": {c: {"roles": dict(spec["roles"])} for c, spec in crews.items()},
        "a2aAgents": agents,
        "networkPolicy": {
            "redis": {"cidrs": ["0.0.0.0/0", "::/0"]},
            "extraEgress": [{"ports": [{"port": 443}]}, {"to": [{"ipBlock": {"cidr": "::/0"}}]}],
        },
        "llm": {"overflow": {"enabled": True, "url": "https://api.example.com/v1", "model": "m",
                             "apiKeySecret": {"name": "k"}, "price": {"input_per_mtok": 1, "output_per_mtok": 1}}},
    }  # fmt: skip
    for (crew, role), agent in zip(roles, agents, strict=True):
        variant["crews"][crew]["roles"][role] = {**crews[crew]["roles"][role], "outsideAgent": agent}
    objects = render(variant)
    blocks = _every_ip_block(objects)
    assert len(blocks) >= 10
    for block in blocks:
        assert not any(_reachable(block, address) for address in METADATA_ADDRESSES), block
    for obj in of_kind(objects, "NetworkPolicy"):
        validate(obj)

    by_agent = {
        p["metadata"]["annotations"]["crews.dev/role"]: p["spec"]["egress"]
        for p in of_kind(objects, "NetworkPolicy")
        if "crews.dev/role" in p["metadata"].get("annotations", {})
    }
    public, inside, raw = (by_agent[role] for _, role in roles)
    assert public == [{"ports": [{"port": 80, "protocol": "TCP"}], "to": PUBLIC}]
    assert inside == [
        {"ports": [{"port": 9443, "protocol": "TCP"}], "to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}
    ]
    assert raw == [{"to": [PUBLIC[0]]}]  # the operator's 0.0.0.0/0 with the private and metadata exceptions
    overflow = _egress(objects, "allow-llm")[1]
    assert overflow == {"ports": [{"protocol": "TCP", "port": 443}], "to": PUBLIC}
    assert _egress(objects, "allow-vllm") == [{"ports": [{"protocol": "TCP", "port": 443}], "to": PUBLIC}]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"networkPolicy": {"nats": {"cidrs": ["169.254.169.254/32"]}}}, "inside 169.254.0.0/16"),
        ({"networkPolicy": {"redis": {"to": [{"ipBlock": {"cidr": "fd00:ec2::254/128"}}]}}}, "fd00:ec2::254"),
        ({"networkPolicy": {"extraEgress": [{"to": [{"ipBlock": {"cidr": "10.1.0.0/16"}}]}]}}, "private"),
        ({"networkPolicy": {"nats": {"podLabels": None}}}, "say where it is"),
    ],
)
def test_an_ip_block_inside_a_metadata_or_private_range_does_not_render(
    values: Obj, change: Obj, message: str
) -> None:
    with pytest.raises(Exception, match=message):
        render({**values, **change})


def test_an_agent_at_a_private_address_needs_allow_private(values: Obj) -> None:
    crew = next(iter(values["crews"]))
    role = next(iter(values["crews"][crew]["roles"]))
    crews = {crew: {"roles": {role: {**values["crews"][crew]["roles"][role], "outsideAgent": "inside"}}}}
    agent = {"url": "https://agent.internal", "cidrs": ["10.0.0.0/8"]}
    with pytest.raises(
        Exception, match=re.escape("a2aAgents.inside: the ipBlock 10.0.0.0/8 is inside 10.0.0.0/8")
    ):
        render({**values, "crews": crews, "a2aAgents": {"inside": agent}})


def test_the_metadata_ranges_hold_the_metadata_addresses() -> None:
    networks = [ipaddress.ip_network(cidr) for cidr in METADATA]
    for address in METADATA_ADDRESSES:
        assert any(address in network for network in networks if network.version == address.version)
