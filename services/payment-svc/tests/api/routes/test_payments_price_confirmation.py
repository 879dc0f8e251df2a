"""Attack: the seller raises the price between the buyer's view and the payment (issue 11, item 5).

The buyer confirms the price they saw (``amount_minor`` + ``currency``); if the listing's price is
different when the payment is made, nothing is charged and the answer is 409 ``price_changed``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from payment_svc.models import Payment
from sqlalchemy import func, select

from .test_payments_routes import APPROVE, pay


async def test_a_price_raised_after_the_buyer_saw_it_is_409_and_charges_nothing(
    client, auth, seed_listing, publish_listing, wait_for_listing, processor, engine
) -> None:
    owner = uuid.uuid4()
    listing = await seed_listing(owner, price_minor=2500, currency="EUR")
    later = datetime.now(UTC) + timedelta(seconds=1)
    await publish_listing("listing.updated", listing, owner, price_minor=250000, updated_at=later)
    await wait_for_listing(listing, lambda row: row.price_minor == 250000)
    charges, key = processor.charges, str(uuid.uuid4())
    seen = {"listing_id": str(listing), "amount_minor": 2500, "currency": "EUR", "card": APPROVE}
    r = await pay(client, auth(uuid.uuid4()), seen, key)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "price_changed")
    assert r.json()["error"]["details"] == {"amount_minor": 250000, "currency": "EUR"}
    assert processor.charges == charges
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).where(Payment.idempotency_key == key)) == 0


async def test_another_currency_than_the_listing_is_409(client, auth, seed_listing) -> None:
    listing = await seed_listing(uuid.uuid4(), price_minor=2500, currency="EUR")
    body = {"listing_id": str(listing), "amount_minor": 2500, "currency": "USD", "card": APPROVE}
    r = await pay(client, auth(uuid.uuid4()), body, str(uuid.uuid4()))
    assert (r.status_code, r.json()["error"]["code"]) == (409, "price_changed")


async def test_the_confirmed_price_is_required(client, auth, seed_listing) -> None:
    listing = await seed_listing(uuid.uuid4())
    r = await pay(
        client, auth(uuid.uuid4()), {"listing_id": str(listing), "card": APPROVE}, "k-" + uuid.uuid4().hex
    )
    assert r.status_code == 422
    missing = {tuple(d["loc"]) for d in r.json()["error"]["details"]}
    assert {("body", "amount_minor"), ("body", "currency")} <= missing


async def test_a_free_listing_from_before_the_price_bounds_is_refused_not_500(
    client, auth, seed_listing, processor
) -> None:
    """Issue 11, item 10: a listing priced 0 (marketplace-svc refuses such prices now; older ones may
    still be in the read model) made payment answer 500 (the payments table requires amount > 0)."""
    listing = await seed_listing(uuid.uuid4(), price_minor=0, currency="EUR")
    charges = processor.charges
    free = {"listing_id": str(listing), "amount_minor": 0, "currency": "EUR", "card": APPROVE}
    assert (await pay(client, auth(uuid.uuid4()), free, str(uuid.uuid4()))).status_code == 422
    cent = {**free, "amount_minor": 1}
    r = await pay(client, auth(uuid.uuid4()), cent, str(uuid.uuid4()))
    assert (r.status_code, r.json()["error"]["code"]) == (409, "price_changed")
    assert processor.charges == charges
