"""Fleet: many edge boxes, one identity service, over a broker (Redis Streams).

- ``schema``: the messages (versioned) and their encoding to stream fields.
- ``transport``: the narrow transport interface (publish, consume with acknowledgement, replay from an
  id) and ``RedisStreamsTransport``; a Kafka transport would implement the same interface.
- ``outbox``: the edge's bounded buffer for when the broker is unreachable.
- ``edge``: ``FleetEdge``, the pipeline's hook: publishes per-camera tracks, applies global ids.
- ``service``: ``IdentityService``, the one process that runs the identity registry for a site.
"""
