"""The workers' exec probe (helm/crews/files/nats_connected.py) against a real NATS connection."""

from __future__ import annotations

import asyncio
import sys

import nats

from crews.local.servers import free_port
from tests.chart.render import CHART
from tests.servers import ManagedServer

PROBE = CHART / "files" / "nats_connected.py"


async def probe(port: int) -> int:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-I", "-S", str(PROBE), str(port))
    return await asyncio.wait_for(proc.wait(), 10)


async def test_probe_passes_while_connected_to_nats(own_nats_server: ManagedServer) -> None:
    assert own_nats_server.process is not None
    port = own_nats_server.process.port
    assert await probe(port) == 1  # nothing connected yet
    nc = await nats.connect(own_nats_server.url)
    try:
        assert await probe(port) == 0
        assert await probe(free_port()) == 1  # connected, but not to that port
    finally:
        await nc.close()
    assert await probe(port) == 1  # close() returns once the socket has left ESTABLISHED
