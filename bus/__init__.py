"""bus: A2A over NATS JetStream.

Subjects, streams and consumers, durable dispatch, the worker loop, job
events, trace propagation, and the A2A NATS binding.
"""
