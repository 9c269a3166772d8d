"""bus: A2A over NATS JetStream.

Subjects, streams and consumers, durable dispatch, the worker loop, job
events, trace propagation, and the A2A NATS binding.
"""

from bus.lazy_imports import import_nats

import_nats()  # before any module imports nats: its WebSocket libraries load only for ws:// servers
