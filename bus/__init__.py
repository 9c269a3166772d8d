"""bus: A2A over NATS JetStream — subjects, streams and consumers, dispatch, the worker loop, events, trace propagation, and the A2A NATS binding."""
