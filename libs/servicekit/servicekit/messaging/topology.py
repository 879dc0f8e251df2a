"""The broker topology of docs/architecture.md, for tests and dev brokers without definitions.

In every real deployment the topology comes from the RabbitMQ definitions rendered by the platform
(services' users may not declare anything). :func:`topology` builds the same exchanges, queues and
bindings in the definitions format (a test proves both agree) and :func:`declare_topology` declares
them on a channel with configure rights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aio_pika import ExchangeType
from aio_pika.abc import AbstractChannel

from servicekit.messaging.publisher import DLX_EXCHANGE, EVENTS_EXCHANGE, REDELIVER_EXCHANGE, RETRY_EXCHANGE
from servicekit.revocation import EVENT_TYPE as REVOCATION_EVENT
from servicekit.revocation import REVOCATIONS_STREAM, stream_arguments

EXCHANGES = (EVENTS_EXCHANGE, RETRY_EXCHANGE, REDELIVER_EXCHANGE, DLX_EXCHANGE)


def topology(consumers: Mapping[str, Sequence[str]], retry_delays_ms: Sequence[int]) -> dict[str, Any]:
    """Exchanges, queues and bindings for *consumers* (service -> consumed routing keys), and the
    session-revocation stream every replica reads."""
    queues: list[dict[str, Any]] = [
        {"name": REVOCATIONS_STREAM, "durable": True, "arguments": stream_arguments()}
    ]
    bindings: list[dict[str, Any]] = [
        {"source": EVENTS_EXCHANGE, "destination": REVOCATIONS_STREAM, "routing_key": REVOCATION_EVENT}
    ]
    for svc in sorted(consumers):
        queues.append(
            {
                "name": f"{svc}.events",
                "durable": True,
                "arguments": {
                    "x-dead-letter-exchange": DLX_EXCHANGE,
                    "x-dead-letter-routing-key": svc,
                    "x-queue-type": "classic",
                },
            }
        )
        bindings += [
            {"source": EVENTS_EXCHANGE, "destination": f"{svc}.events", "routing_key": key}
            for key in sorted(consumers[svc])
        ]
        bindings.append({"source": REDELIVER_EXCHANGE, "destination": f"{svc}.events", "routing_key": svc})
        for n, delay in enumerate(retry_delays_ms, start=1):
            name = f"{svc}.retry.{n}"
            queues.append(
                {
                    "name": name,
                    "durable": True,
                    "arguments": {
                        "x-dead-letter-exchange": REDELIVER_EXCHANGE,
                        "x-dead-letter-routing-key": svc,
                        "x-message-ttl": delay,
                        "x-queue-type": "classic",
                    },
                }
            )
            bindings.append({"source": RETRY_EXCHANGE, "destination": name, "routing_key": name})
        queues.append({"name": f"{svc}.dlq", "durable": True, "arguments": {"x-queue-type": "classic"}})
        bindings.append({"source": DLX_EXCHANGE, "destination": f"{svc}.dlq", "routing_key": svc})
    return {
        "exchanges": [{"name": name, "type": "topic", "durable": True} for name in EXCHANGES],
        "queues": queues,
        "bindings": bindings,
    }


async def declare_topology(
    channel: AbstractChannel, consumers: Mapping[str, Sequence[str]], retry_delays_ms: Sequence[int]
) -> None:
    """Declare :func:`topology` on *channel* (needs configure permission)."""
    plan = topology(consumers, retry_delays_ms)
    exchanges = {
        e["name"]: await channel.declare_exchange(e["name"], ExchangeType.TOPIC, durable=True)
        for e in plan["exchanges"]
    }
    queues = {
        q["name"]: await channel.declare_queue(q["name"], durable=True, arguments=q["arguments"])
        for q in plan["queues"]
    }
    for b in plan["bindings"]:
        await queues[b["destination"]].bind(exchanges[b["source"]], routing_key=b["routing_key"])
