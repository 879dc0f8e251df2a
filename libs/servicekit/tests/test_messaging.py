"""Publishing and consuming through the platform's real topology (rendered definitions imported into
the session's broker), as the services' own least-privilege users."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import aio_pika
import pytest
from servicekit.messaging.envelope import Envelope, new_event
from servicekit.messaging.publisher import Unroutable
from servicekit.testing import Database, app_client

from .conftest import CONSUMER, DELAYS, PUBLISHER, UNROUTED, Ping
from .messaging_helpers import applied, consumed, consumer_app, drain_dlq, publisher_app, wait_for


def ping(n: int, note: str = "") -> Envelope:
    return new_event(Ping(n=n, note=note), producer=PUBLISHER)


@pytest.fixture
def ns() -> list[int]:
    """Fresh event numbers for one test (the consumer queue is shared by the session)."""
    base = random.randrange(1, 10**8) * 10
    return [base + i for i in range(10)]


async def test_published_events_are_consumed_and_applied(
    rabbitmq_server: Any, sk_broker: dict[str, str], database: Database, ns: list[int]
) -> None:
    pub = publisher_app(database, rabbitmq_server, sk_broker[PUBLISHER])
    con = consumer_app(database, rabbitmq_server, sk_broker[CONSUMER])
    async with app_client(pub) as pub_client, app_client(con) as con_client:
        await pub.state.runtime.broker.wait_ready(10)
        await con.state.runtime.broker.wait_ready(10)
        for n in ns[:3]:
            await pub.state.runtime.publisher.publish(ping(n))
        await wait_for(lambda: _has(con, ns[:3]), 10, "three events applied")
        metrics = (await pub_client.get("/metrics")).text
        ready = (await con_client.get("/readyz")).json()
    assert 'messaging_published_total{event="sktest.ping",service="skpub-svc"} 3.0' in metrics
    assert consumed(con, "ok") == 3
    assert ready["checks"] == {"postgres": "ok", "rabbitmq": "ok"}


async def test_duplicate_deliveries_are_applied_once(
    rabbitmq_server: Any, sk_broker: dict[str, str], database: Database, ns: list[int]
) -> None:
    pub = publisher_app(database, rabbitmq_server, sk_broker[PUBLISHER])
    con = consumer_app(database, rabbitmq_server, sk_broker[CONSUMER])
    event = ping(ns[0])
    async with app_client(pub), app_client(con):
        await pub.state.runtime.broker.wait_ready(10)
        await con.state.runtime.broker.wait_ready(10)
        for _ in range(3):  # the same event id three times, e.g. a publisher retry after a lost confirm
            await pub.state.runtime.publisher.publish(event)
        await pub.state.runtime.publisher.publish(ping(ns[1]))
        await wait_for(lambda: _has(con, [ns[1]]), 10, "the marker event")
        await wait_for(lambda: _count(con, "duplicate", 2), 10, "two duplicates counted")
    assert sorted(await applied(con, ns)) == [ns[0], ns[1]]


async def test_poison_message_is_retried_then_dead_lettered_and_consuming_goes_on(
    rabbitmq_server: Any, sk_broker: dict[str, str], database: Database, ns: list[int]
) -> None:
    pub = publisher_app(database, rabbitmq_server, sk_broker[PUBLISHER])
    con = consumer_app(database, rabbitmq_server, sk_broker[CONSUMER])
    async with app_client(pub), app_client(con):
        await pub.state.runtime.broker.wait_ready(10)
        await con.state.runtime.broker.wait_ready(10)
        poison = ping(ns[0], "poison")
        await pub.state.runtime.publisher.publish(poison)
        dead = await drain_dlq(rabbitmq_server, limit_s=10, expected=1)
        await pub.state.runtime.publisher.publish(ping(ns[1]))
        await wait_for(lambda: _has(con, [ns[1]]), 10, "a good event after the poison one")
    assert len(dead) == 1
    message = dead[0]
    assert json.loads(message.body)["id"] == str(poison.id)
    assert message.headers["x-attempt"] == len(DELAYS) + 1  # every attempt was made
    assert "handler bug" in str(message.headers["x-error"])
    assert consumed(con, "retried") == len(DELAYS)
    assert consumed(con, "dead_lettered") == 1
    assert await applied(con, ns) == [ns[1]]  # the failing attempts rolled back


async def test_permanent_errors_and_malformed_messages_skip_retries(
    rabbitmq_server: Any, sk_broker: dict[str, str], database: Database, ns: list[int]
) -> None:
    pub = publisher_app(database, rabbitmq_server, sk_broker[PUBLISHER])
    con = consumer_app(database, rabbitmq_server, sk_broker[CONSUMER])
    async with app_client(pub), app_client(con):
        await pub.state.runtime.broker.wait_ready(10)
        await con.state.runtime.broker.wait_ready(10)
        await pub.state.runtime.publisher.publish(ping(ns[0], "permanent"))
        connection = await aio_pika.connect(rabbitmq_server.url("market", PUBLISHER, sk_broker[PUBLISHER]))
        channel = await connection.channel()
        exchange = await channel.get_exchange("events", ensure=False)
        await exchange.publish(aio_pika.Message(b"{not json", headers={"x-attempt": 1}), "sktest.ping")
        await connection.close()
        dead = await drain_dlq(rabbitmq_server, limit_s=10, expected=2)
    assert sorted(m.headers["x-attempt"] for m in dead) == [1, 1]
    assert consumed(con, "retried") == 0
    assert consumed(con, "dead_lettered") == 2


async def test_unroutable_event_is_reported(
    rabbitmq_server: Any, sk_broker: dict[str, str], database: Database
) -> None:
    pub = publisher_app(database, rabbitmq_server, sk_broker[PUBLISHER])
    from pydantic import BaseModel
    from servicekit.messaging.envelope import registry

    class Unrouted(BaseModel):
        x: int

    if (UNROUTED, 1) not in registry:
        registry.register(UNROUTED, Unrouted)
    async with app_client(pub):
        await pub.state.runtime.broker.wait_ready(10)
        with pytest.raises(Unroutable):
            await pub.state.runtime.publisher.publish(
                Envelope(type=UNROUTED, producer=PUBLISHER, payload={"x": 1})
            )


async def _has(app: Any, ns: list[int]) -> bool:
    return set(ns) <= set(await applied(app, ns))


async def _count(app: Any, outcome: str, expected: float) -> bool:
    return consumed(app, outcome) >= expected


async def test_database_outage_requeues_without_spending_attempts(
    rabbitmq_server: Any, sk_broker: dict[str, str], server_factory: Any, ns: list[int]
) -> None:
    from servicekit.testing import create_database

    from .conftest import create_schema

    pg = server_factory.postgres()
    db = await create_database(pg)
    await create_schema(db)
    pub = publisher_app(db, rabbitmq_server, sk_broker[PUBLISHER], outbox=False)
    con = consumer_app(db, rabbitmq_server, sk_broker[CONSUMER])
    async with app_client(pub), app_client(con):
        await pub.state.runtime.broker.wait_ready(10)
        await con.state.runtime.broker.wait_ready(10)
        await asyncio.to_thread(pg.stop)
        await pub.state.runtime.publisher.publish(ping(ns[0]))
        await asyncio.sleep(sum(DELAYS) / 1000 * 3)  # longer than every retry delay together
        await asyncio.to_thread(pg.start)
        await wait_for(lambda: _has(con, [ns[0]]), 15, "the event once the database is back")
    assert consumed(con, "dead_lettered") == 0
    assert consumed(con, "ok") == 1
