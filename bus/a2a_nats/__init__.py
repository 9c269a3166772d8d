"""bus.a2a_nats: the A2A NATS protocol binding (``docs/a2a-nats-binding.md``).

Owns both halves of A2A JSON-RPC over NATS request-reply on ``crews.a2a.<agent>``:

- ``bus.a2a_nats.server``: ``NatsA2AServer`` serves an a2a-sdk ``RequestHandler``
  (or, via ``NatsA2AServer.for_executor``, an ``AgentExecutor``) in a queue group.
- ``bus.a2a_nats.client``: ``NatsTransport``, an a2a-sdk ``ClientTransport``;
  ``nats_client_factory`` registers it on a ``ClientFactory`` under
  ``NATS_PROTOCOL_BINDING``, and ``nats_agent_interface`` builds the card entry.

Like every package ``__init__`` here (docs/architecture.md, "Layout"), this one imports nothing:
import the two modules directly.
"""
