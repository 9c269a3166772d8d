"""The embedded local stack: NATS and a Redis-compatible server from the installed binaries."""
