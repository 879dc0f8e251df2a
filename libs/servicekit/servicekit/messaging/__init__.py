"""Events over RabbitMQ: envelope + registry, publisher, consumer, outbox, idempotency, topology."""
