"""Poison messages on marketplace-svc's real consumer queue (platform definitions, short delays): a
``payment.succeeded`` its handler cannot apply ends in ``marketplace-svc.dlq`` after the stack's
``len(retryDelaysMs) + 1`` attempts, a malformed one at once, and good events keep flowing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aio_pika
import sqlalchemy as sa
from payment_svc.events import PaymentSucceeded
from servicekit.messaging.envelope import Envelope, new_event
from servicekit.messaging.publisher import build_message
from servicekit.messaging.tables import processed_t
from servicekit.testing import bearer

from infra.render.rabbitmq import dead_letter_queue

from .conftest import BrokerAccess, Running, publish_as, running, stack_spec, wait_until

SERVICE = "marketplace-svc"
EVENT = "payment.succeeded"


def succeeded(listing: dict[str, Any]) -> Envelope:
    """payment-svc's own event for a payment of *listing*."""
    payload = PaymentSucceeded(
        payment_id=uuid.uuid4(),
        listing_id=listing["id"],
        buyer_id=uuid.uuid4(),
        seller_id=listing["owner_id"],
        amount_minor=listing["price_minor"],
        currency=listing["currency"],
        occurred_at=datetime.now(UTC),
        processor_reference="sbx_test",
    )
    return new_event(payload, producer="payment-svc")


async def publish(broker: BrokerAccess, message: aio_pika.Message) -> None:
    """Publish as payment-svc's own user (its topic permission allows exactly its event types)."""
    await publish_as(broker.url("payment-svc"), message, EVENT)


async def next_dead(broker: BrokerAccess, limit_s: float = 15) -> aio_pika.abc.AbstractIncomingMessage:
    """The next message in marketplace-svc's DLQ (read as the admin)."""
    connection = await aio_pika.connect(broker.url(), timeout=10)
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(dead_letter_queue(SERVICE), ensure=False)

        async def get() -> Any:
            return await queue.get(no_ack=True, fail=False)

        return await wait_until(get, limit_s, f"a message in {dead_letter_queue(SERVICE)}")
    finally:
        await connection.close()


async def listing_factory(market: Running) -> Callable[[], Awaitable[dict[str, Any]]]:
    headers = bearer(market.settings, str(uuid.uuid4()))

    async def create() -> dict[str, Any]:
        body = {"title": "Canoe", "description": "", "price_minor": 30000, "currency": "EUR"}
        created = await market.client.post("/api/marketplace/listings", json=body, headers=headers)
        assert created.status_code == 201, created.text
        return created.json()

    return create


async def status_of(market: Running, listing: dict[str, Any]) -> str:
    return (await market.client.get(f"/api/marketplace/listings/{listing['id']}")).json()["status"]


async def wait_sold(market: Running, listing: dict[str, Any]) -> None:
    async def sold() -> bool:
        return await status_of(market, listing) == "sold"

    await wait_until(sold, 15, f"listing {listing['id']} sold")


async def test_a_failing_event_is_dead_lettered_after_every_attempt_and_consuming_goes_on(
    postgres_server: Any, redis_server: Any, isolated_broker: BrokerAccess
) -> None:
    attempts = stack_spec().config.rabbitmq.max_attempts  # the stack's len(retryDelaysMs) + 1
    async with running(
        SERVICE, postgres=postgres_server, redis=redis_server, broker=isolated_broker
    ) as market:
        assert market.settings.max_attempts == attempts
        new_listing = await listing_factory(market)
        poisoned, good, later = await new_listing(), await new_listing(), await new_listing()
        # The database refuses to mark this one listing sold: the handler fails on every attempt.
        async with market.runtime.engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "ALTER TABLE listings ADD CONSTRAINT it_poison "
                    f"CHECK (id <> '{poisoned['id']}'::uuid OR status = 'active')"
                )
            )
        poison = succeeded(poisoned)
        await publish(isolated_broker, build_message(poison))
        await publish(isolated_broker, build_message(succeeded(good)))

        dead = await next_dead(isolated_broker)
        await wait_sold(market, good)
        await publish(isolated_broker, build_message(succeeded(later)))  # after the poison was dead-lettered
        await wait_sold(market, later)

        async with market.runtime.sessionmaker() as session:
            marked = await session.scalar(
                sa.select(sa.func.count()).where(processed_t.c.message_id == poison.id)
            )
        assert await status_of(market, poisoned) == "active"
    assert json.loads(dead.body)["id"] == str(poison.id)
    assert dead.headers["x-attempt"] == attempts
    assert dead.type == EVENT  # what an operator re-publishes it with (see the runbook)
    assert dead.headers["x-original-routing-key"] == EVENT  # kept across retry hops
    assert "it_poison" in str(dead.headers["x-error"])
    assert market.consumed(EVENT, "retried") == attempts - 1
    assert market.consumed(EVENT, "dead_lettered") == 1
    assert marked == 0  # every failed attempt rolled back, its marker too


async def test_a_malformed_event_is_dead_lettered_at_once_and_consuming_goes_on(
    postgres_server: Any, redis_server: Any, isolated_broker: BrokerAccess
) -> None:
    async with running(
        SERVICE, postgres=postgres_server, redis=redis_server, broker=isolated_broker
    ) as market:
        new_listing = await listing_factory(market)
        good = await new_listing()
        garbage = aio_pika.Message(
            b'{"id": "not-a-uuid", "type": "payment.succeeded"',
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id="garbage-1",
            headers={"x-attempt": 1},
        )
        await publish(isolated_broker, garbage)
        await publish(isolated_broker, build_message(succeeded(good)))
        dead = await next_dead(isolated_broker)
        await wait_sold(market, good)
    assert dead.body == garbage.body
    assert dead.headers["x-attempt"] == 1  # retrying cannot fix it
    assert "malformed envelope" in str(dead.headers["x-error"])
    assert market.consumed(EVENT, "retried") == 0
    assert market.consumed(EVENT, "ok") == 1
