"""Settings for clusters: several NATS servers in one URL, stream replicas, and Redis cluster URLs."""

from __future__ import annotations

import pytest

from bus.a2a_nats.client import nats_agent_interface
from bus.connect import nats_servers
from bus.jetstream.streams import stream_configs
from bus.redis_client import cluster_client
from bus.settings import BusSettings, RedisSettings


def test_a_nats_url_may_list_the_servers_of_a_cluster() -> None:
    assert nats_servers("nats://a:4222, nats://b:4222,") == ["nats://a:4222", "nats://b:4222"]
    card = nats_agent_interface("crew.role", "nats://u:p@a:4222,nats://b:4222")
    assert card.url == "nats://a:4222/crews.a2a.crew.role"


def test_every_stream_keeps_the_configured_replicas() -> None:
    assert {c.num_replicas for c in stream_configs(BusSettings())} == {1}
    assert {c.num_replicas for c in stream_configs(BusSettings(stream_replicas=3))} == {3}


@pytest.mark.parametrize(
    ("url", "flag", "cluster"),
    [
        ("redis://r:6379/0", False, False),
        ("redis://r:6379/0", True, True),
        ("redis+cluster://r:6379", False, True),
        ("rediss+cluster://u:p@r:6379", False, True),
    ],
)
def test_a_cluster_is_named_by_the_setting_or_the_url_scheme(url: str, flag: bool, cluster: bool) -> None:
    assert RedisSettings(redis_url=url, redis_cluster=flag).cluster is cluster


async def test_a_cluster_url_names_its_startup_nodes_and_credentials() -> None:
    client = cluster_client("redis+cluster://user:secret@a:7000,b:7001,[::1]:7002", failover_s=5)
    try:
        assert sorted(n.name for n in client.startup_nodes) == ["::1:7002", "a:7000", "b:7001"]
        assert client.connection_kwargs["password"] == "secret"
        assert client.failover_s == 5
    finally:
        await client.aclose()
    with pytest.raises(ValueError, match="redis:// or rediss://"):
        cluster_client("http://a:7000")
