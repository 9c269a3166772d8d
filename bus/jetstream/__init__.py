"""JetStream: streams and consumers, durable dispatch, the work loop, dead letters."""
