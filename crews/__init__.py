"""crews: crew files and planning, the coordinator and job store, the HTTP API, the CLI, the local stack."""

import bus  # noqa: F401  # first: nats without its WebSocket libraries (bus.lazy_imports)
