"""payment-svc's events on a real broker: the listing read model and the outbox-published results."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}


@pytest.fixture
async def payment_events(admin_channel: Any) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
    """Envelopes of payment.* events, from a queue bound like a consumer's would be."""
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    queue = await admin_channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind("events", routing_key="payment.*")

    async def on_message(message: Any) -> None:
        async with message.process():
            await received.put(json.loads(message.body))

    tag = await queue.consume(on_message)
    yield received
    await queue.cancel(tag)


async def next_event_for(events: asyncio.Queue[dict[str, Any]], payment_id: str) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            envelope = await events.get()
            if envelope["payload"]["payment_id"] == payment_id:
                return envelope


async def _pay(
    client: Any, headers: dict[str, str], listing: uuid.UUID, number: str, amount_minor: int = 2500
) -> Any:
    card = {**CARD, "number": number}
    body = {"listing_id": str(listing), "amount_minor": amount_minor, "currency": "EUR", "card": card}
    return await client.post(
        "/api/payments", json=body, headers={**headers, "Idempotency-Key": str(uuid.uuid4())}
    )


async def test_decline_publishes_payment_failed(client, auth, seed_listing, payment_events) -> None:
    listing = await seed_listing(uuid.uuid4())
    r = await _pay(client, auth(uuid.uuid4()), listing, "4000000000000002")
    assert r.status_code == 402
    envelope = await next_event_for(payment_events, r.json()["id"])
    assert envelope["type"] == "payment.failed"
    assert envelope["producer"] == "payment-svc"
    assert envelope["payload"]["decline_code"] == "card_declined"


async def test_success_publishes_payment_succeeded(client, auth, seed_listing, payment_events) -> None:
    seller, buyer = uuid.uuid4(), uuid.uuid4()
    listing = await seed_listing(seller, price_minor=1234)
    r = await _pay(client, auth(buyer), listing, "4242424242424242", amount_minor=1234)
    envelope = await next_event_for(payment_events, r.json()["id"])
    assert envelope["type"] == "payment.succeeded"
    payload = envelope["payload"]
    assert (payload["listing_id"], payload["buyer_id"], payload["seller_id"]) == (
        str(listing),
        str(buyer),
        str(seller),
    )
    assert payload["amount_minor"] == 1234


async def test_listing_updated_changes_price(publish_listing, wait_for_listing, seed_listing) -> None:
    owner = uuid.uuid4()
    listing = await seed_listing(owner, price_minor=1000)
    later = datetime.now(UTC) + timedelta(seconds=5)
    await publish_listing("listing.updated", listing, owner, price_minor=700, updated_at=later)
    updated = await wait_for_listing(listing, lambda row: row.price_minor == 700)
    assert updated.source_updated_at == later


async def test_older_listing_update_is_ignored(publish_listing, wait_for_listing, seed_listing) -> None:
    owner = uuid.uuid4()
    listing = await seed_listing(owner, price_minor=1000)
    stale = datetime.now(UTC) - timedelta(hours=1)
    await publish_listing("listing.updated", listing, owner, price_minor=1, updated_at=stale)
    marker = uuid.uuid4()  # a later event on the same queue proves the stale one was consumed first
    await publish_listing("listing.created", marker, owner)
    await wait_for_listing(marker)
    assert (await wait_for_listing(listing)).price_minor == 1000


async def test_listing_deleted_leaves_a_tombstone_and_paying_for_it_is_404(
    client, auth, publish_listing, wait_for_listing, seed_listing
) -> None:
    owner = uuid.uuid4()
    listing = await seed_listing(owner)
    deleted_at = datetime.now(UTC) + timedelta(seconds=5)
    await publish_listing("listing.deleted", listing, owner, status="deleted", updated_at=deleted_at)
    await wait_for_listing(listing, lambda row: row.status == "deleted")
    r = await _pay(client, auth(uuid.uuid4()), listing, "4242424242424242")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "listing_not_found"


async def test_a_late_update_does_not_bring_a_deleted_listing_back(
    publish_listing, wait_for_listing, seed_listing
) -> None:
    owner = uuid.uuid4()
    listing = await seed_listing(owner)
    now = datetime.now(UTC)
    await publish_listing("listing.deleted", listing, owner, status="deleted", updated_at=now)
    await wait_for_listing(listing, lambda row: row.status == "deleted")
    await publish_listing("listing.updated", listing, owner, updated_at=now - timedelta(seconds=1))
    marker = uuid.uuid4()  # a later event on the same queue proves the late update was consumed first
    await publish_listing("listing.created", marker, owner)
    await wait_for_listing(marker)
    assert (await wait_for_listing(listing)).status == "deleted"
