"""auth-svc, marketplace-svc, payment-svc and chat-svc together over one real broker: a listing is
created, learned by payment-svc and chat-svc from ``listing.created``, paid with an Idempotency-Key,
and marked sold by marketplace-svc from ``payment.succeeded``."""

from __future__ import annotations

import time
import uuid
from typing import Any

import sqlalchemy as sa
from payment_svc.models import Listing as PaymentListing
from servicekit.messaging.tables import outbox_t, processed_t

from .conftest import BrokerAccess, Running, running, wait_until

PASSWORD = "correct horse battery 42"
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}


async def account(auth: Running, who: str) -> dict[str, str]:
    """Register and log in through auth-svc; returns the user id and Authorization headers."""
    email = f"{who}-{uuid.uuid4().hex[:8]}@example.com"
    registered = await auth.client.post("/api/auth/register", json={"email": email, "password": PASSWORD})
    assert registered.status_code == 201, registered.text
    login = await auth.client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return {"id": registered.json()["id"], "Authorization": f"Bearer {login.json()['access_token']}"}


def bearer(user: dict[str, str]) -> dict[str, str]:
    return {"Authorization": user["Authorization"]}


async def scalar(service: Running, query: Any) -> Any:
    async with service.runtime.sessionmaker() as session:
        return await session.scalar(query)


async def test_a_paid_listing_becomes_sold_through_the_broker(
    postgres_server: Any, redis_server: Any, isolated_broker: BrokerAccess, timings: dict[str, float]
) -> None:
    start = time.monotonic()
    where = {"postgres": postgres_server, "redis": redis_server, "broker": isolated_broker}
    async with (
        running("auth-svc", **where) as auth,
        running("marketplace-svc", **where) as market,
        running("payment-svc", **where) as pay,
        running("chat-svc", **where) as chat,
    ):
        timings["four services up"] = time.monotonic() - start
        seller, buyer = await account(auth, "seller"), await account(auth, "buyer")

        created = await market.client.post(
            "/api/marketplace/listings",
            json={"title": "Brass lamp", "description": "works", "price_minor": 2500, "currency": "EUR"},
            headers=bearer(seller),
        )
        assert created.status_code == 201, created.text
        listing_id = uuid.UUID(created.json()["id"])
        t0 = time.monotonic()

        # listing.created reaches payment-svc's read model and chat-svc over the broker.
        known = await wait_until(
            lambda: scalar(pay, sa.select(PaymentListing).where(PaymentListing.id == listing_id)),
            15,
            "payment-svc's read model holding the listing",
        )
        assert (known.seller_id, known.price_minor, known.status) == (uuid.UUID(seller["id"]), 2500, "active")

        async def conversation() -> Any:
            r = await chat.client.post(
                "/api/chat/conversations", json={"listing_id": str(listing_id)}, headers=bearer(buyer)
            )
            return r if r.status_code != 404 else None

        opened = await wait_until(conversation, 15, "chat-svc knowing the listing")
        assert opened.status_code == 201, opened.text
        timings["listing.created delivered"] = time.monotonic() - t0

        body = {"listing_id": str(listing_id), "amount_minor": 2500, "currency": "EUR", "card": CARD}
        key = {"Idempotency-Key": str(uuid.uuid4())}
        paid = await pay.client.post("/api/payments", json=body, headers=bearer(buyer) | key)
        replay = await pay.client.post("/api/payments", json=body, headers=bearer(buyer) | key)
        assert paid.status_code == 201, paid.text
        assert (replay.status_code, replay.json()["id"]) == (201, paid.json()["id"])
        assert replay.headers["Idempotent-Replayed"] == "true"
        t1 = time.monotonic()

        async def sold() -> dict[str, Any] | None:
            r = await market.client.get(f"/api/marketplace/listings/{listing_id}", headers=bearer(seller))
            return r.json() if r.json().get("status") == "sold" else None

        listing = await wait_until(sold, 15, "marketplace-svc marking the listing sold")
        timings["payment.succeeded applied"] = time.monotonic() - t1
        assert listing["sold_at"] is not None

        event_id = await scalar(
            pay, sa.select(outbox_t.c.event_id).where(outbox_t.c.event_type == "payment.succeeded")
        )
        applied = await scalar(
            market,
            sa.select(sa.func.array_agg(processed_t.c.message_id)).where(
                processed_t.c.event_type == "payment.succeeded"
            ),
        )
        assert applied == [event_id]  # the replayed request published nothing more
        assert market.consumed("payment.succeeded", "ok") == 1
