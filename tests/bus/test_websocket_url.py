"""A ``ws://`` NATS URL still connects, though nats-py is imported without its WebSocket library."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from crews.local.servers import ServerProcess, free_port, nats_server_binary

ROOT = Path(__file__).resolve().parents[2]

CLIENT = """
import asyncio, sys
import bus.connect
from bus.settings import BusSettings
hidden = "aiohttp" not in sys.modules

async def echo(msg) -> None:
    await msg.respond(msg.data[::-1])

async def main() -> None:
    nc = await bus.connect.connect(BusSettings(nats_url=sys.argv[1]), "ws test")
    sub = await nc.subscribe("ws.echo", cb=echo)
    reply = await nc.request("ws.echo", b"over websocket", timeout=10)
    await sub.unsubscribe()
    await nc.drain()
    print(hidden, reply.data.decode())

asyncio.run(main())
"""


def test_a_websocket_server_url_loads_the_websocket_library_and_connects(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "nats.conf"
    config.write_text(
        f'listen: "127.0.0.1:{free_port()}"\nwebsocket {{ listen: "127.0.0.1:{port}", no_tls: true }}\n'
    )
    server = ServerProcess("nats-server", [nats_server_binary(), "-c", str(config)], "Server is ready", port)
    server.start()
    try:
        out = subprocess.run(
            [sys.executable, "-c", CLIENT, f"ws://127.0.0.1:{port}"],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        server.close()
    assert out.returncode == 0, out.stderr
    assert out.stdout.split(maxsplit=1) == ["True", "tekcosbew revo\n"]
