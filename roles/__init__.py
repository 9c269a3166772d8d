"""roles: the role worker runtime — engines (native, crewai, google-adk, remote A2A), tools and approvals."""

import bus  # noqa: F401  # first: nats without its WebSocket libraries (bus.lazy_imports)
