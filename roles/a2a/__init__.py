"""Every role as an A2A agent on NATS, with its tasks in Redis."""
