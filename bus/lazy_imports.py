"""nats-py without its WebSocket libraries until a ``ws://`` server needs them.

nats-py imports aiohttp with its client, for the WebSocket transport of
``ws://`` and ``wss://`` server URLs. crews connects over ``nats://`` unless
configured otherwise, and a worker needs aiohttp only for its LLM calls,
which load after its ready line (``roles.process``): imported with nats,
aiohttp cost ~150 ms and ~11 MB before a worker could fetch its first step
(``bench.coldstart``, bench/FINDINGS.md). So nats is imported with aiohttp
hidden, and ``bus.connect`` gives nats the real module when a server URL is
a WebSocket one.
"""

from __future__ import annotations

import importlib
import sys

WEBSOCKET_LIBRARY = "aiohttp"


def import_nats() -> None:
    """Import nats-py with aiohttp hidden from it, unless either is imported already."""
    if "nats" in sys.modules or WEBSOCKET_LIBRARY in sys.modules:
        return
    sys.modules[WEBSOCKET_LIBRARY] = None  # type: ignore[assignment]  # `import aiohttp` fails while set
    try:
        import nats.aio.transport  # noqa: F401
    finally:
        del sys.modules[WEBSOCKET_LIBRARY]


def enable_websockets() -> None:
    """Give nats-py's WebSocket transport the libraries ``import_nats`` hid from it."""
    from nats.aio import transport

    if transport.aiohttp is None:  # type: ignore[attr-defined]
        transport.aiohttp = importlib.import_module(WEBSOCKET_LIBRARY)
        transport.multidict = importlib.import_module("multidict")
