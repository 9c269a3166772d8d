"""The clusters of these tests: a Valkey cluster and a NATS cluster, each made once for the directory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import nats
import pytest
from nats.aio.client import Client as NATS

from bus.connect import nats_servers
from bus.redis_client import FailoverCluster, cluster_client
from tests.cluster.servers import NatsCluster, ValkeyCluster

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def valkey_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyCluster]:
    cluster = ValkeyCluster(tmp_path_factory.mktemp("valkey-cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def nats_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    cluster = NatsCluster(tmp_path_factory.mktemp("nats-cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
async def cluster_redis(valkey_cluster: ValkeyCluster) -> AsyncIterator[FailoverCluster]:
    """A cluster client (as the processes make it), every primary flushed before the test."""
    client = cluster_client(valkey_cluster.url)
    await client.flushall(target_nodes=FailoverCluster.PRIMARIES)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def cluster_nc(nats_cluster: NatsCluster) -> AsyncIterator[NATS]:
    """A connection to the NATS cluster (every server listed), its streams deleted before the test."""
    client = await nats.connect(
        nats_servers(nats_cluster.url), max_reconnect_attempts=-1, reconnect_time_wait=0.2
    )
    await nats_cluster.wait_for_jetstream(client)
    js = client.jetstream()
    for name in [s.config.name for s in await js.streams_info()]:
        if name:
            await js.delete_stream(name)
    try:
        yield client
    finally:
        await client.close()
