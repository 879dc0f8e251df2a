"""``payment.succeeded`` through the real broker marks the listing sold, once per event."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import asyncpg
from fastapi import FastAPI
from httpx import AsyncClient
from marketplace_svc.core.config import Settings
from servicekit.messaging.envelope import Envelope
from servicekit.messaging.publisher import build_message
from servicekit.testing import Database

CreateListing = Callable[..., Awaitable[dict[str, Any]]]
TokenFor = Callable[[uuid.UUID], dict[str, str]]
URL = "/api/marketplace/listings"


def payment_succeeded(listing_id: str, event_id: uuid.UUID | None = None) -> Envelope:
    """The envelope payment-svc publishes when a buyer paid."""
    return Envelope(
        id=event_id or uuid.uuid4(),
        type="payment.succeeded",
        producer="payment-svc",
        payload={
            "payment_id": str(uuid.uuid4()),
            "listing_id": listing_id,
            "buyer_id": str(uuid.uuid4()),
            "amount_minor": 25000,
            "currency": "EUR",
            "processor_reference": "sandbox-1",
        },
    )


async def publish(rabbitmq: Any, settings: Settings, envelope: Envelope) -> None:
    """Publish *envelope* on the ``events`` exchange as payment-svc would (persistent, confirmed)."""
    connection = await aio_pika.connect(rabbitmq.url(settings.rabbitmq_vhost))
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange("events")
        await exchange.publish(build_message(envelope), routing_key=envelope.type, mandatory=True)


async def consumed(app: FastAPI, outcome: str) -> float:
    """How many ``payment.succeeded`` deliveries ended with *outcome* so far."""
    text = app.state.metrics.render().decode()
    pattern = (
        rf'messaging_consumed_total{{[^}}]*event="payment.succeeded"[^}}]*outcome="{outcome}"[^}}]*}} (\S+)'
    )
    match = re.search(pattern, text)
    return float(match.group(1)) if match else 0.0


async def wait_for(condition: Callable[[], Awaitable[bool]]) -> None:
    """Poll *condition* for up to 10 s."""
    for _ in range(200):
        if await condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met within 10 s")


async def _status(db: Database, listing_id: str) -> str:
    conn = await asyncpg.connect(db.url)
    try:
        return await conn.fetchval("SELECT status FROM listings WHERE id = $1", uuid.UUID(listing_id))
    finally:
        await conn.close()


async def test_payment_succeeded_marks_the_listing_sold(
    client: AsyncClient,
    create_listing: CreateListing,
    owner: uuid.UUID,
    market_settings: Settings,
    market_db: Database,
    rabbitmq_server: Any,
) -> None:
    listing = await create_listing(owner)
    assert (await client.get(f"{URL}/{listing['id']}")).json()["status"] == "active"  # cached now
    await publish(rabbitmq_server, market_settings, payment_succeeded(listing["id"]))

    async def sold() -> bool:
        return await _status(market_db, listing["id"]) == "sold"

    await wait_for(sold)
    response = await client.get(f"{URL}/{listing['id']}")
    assert response.json()["status"] == "sold"  # the consumer invalidated the cached copy
    assert response.json()["sold_at"] is not None


async def test_a_duplicate_delivery_is_applied_once(
    client: AsyncClient,
    create_listing: CreateListing,
    token_for: TokenFor,
    owner: uuid.UUID,
    market_app: FastAPI,
    market_settings: Settings,
    market_db: Database,
    rabbitmq_server: Any,
) -> None:
    listing = await create_listing(owner)
    event = payment_succeeded(listing["id"])
    await publish(rabbitmq_server, market_settings, event)

    async def sold() -> bool:
        return await _status(market_db, listing["id"]) == "sold"

    await wait_for(sold)
    sold_at = (await client.get(f"{URL}/{listing['id']}", headers=token_for(owner))).json()["sold_at"]
    # A redelivery of the same event is recognised (a sold listing stays sold: the owner cannot
    # relist it, so the duplicate is observed through the consumer's outcome and an unchanged row).
    duplicates = await consumed(market_app, "duplicate")
    await publish(rabbitmq_server, market_settings, event)

    async def seen_again() -> bool:
        return await consumed(market_app, "duplicate") > duplicates

    await wait_for(seen_again)
    again = (await client.get(f"{URL}/{listing['id']}", headers=token_for(owner))).json()
    assert (again["status"], again["sold_at"]) == ("sold", sold_at)


async def test_payment_for_an_unknown_listing_is_acknowledged(
    market_app: FastAPI, market_settings: Settings, rabbitmq_server: Any
) -> None:
    ok = await consumed(market_app, "ok")
    await publish(rabbitmq_server, market_settings, payment_succeeded(str(uuid.uuid4())))

    async def handled() -> bool:
        return await consumed(market_app, "ok") > ok

    await wait_for(handled)
