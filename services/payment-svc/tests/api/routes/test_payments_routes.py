"""POST/GET /api/payments against the running app, real PostgreSQL, Redis and RabbitMQ."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from payment_svc.models import Payment
from sqlalchemy import func, select, text

APPROVE = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}
DECLINE = {**APPROVE, "number": "4000000000000002"}
INSUFFICIENT = {**APPROVE, "number": "4000000000009995"}
PROCESSOR_ERROR = {**APPROVE, "number": "4000000000000119"}


def pay_body(
    listing_id: uuid.UUID, card: dict[str, Any] = APPROVE, amount_minor: int = 2500, currency: str = "EUR"
) -> dict[str, Any]:
    """A payment at the price ``seed_listing`` gives by default (2500 EUR)."""
    return {"listing_id": str(listing_id), "amount_minor": amount_minor, "currency": currency, "card": card}


async def pay(client: Any, headers: dict[str, str], body: dict[str, Any], key: str | None = None) -> Any:
    key_header = {"Idempotency-Key": key} if key else {}
    return await client.post("/api/payments", json=body, headers={**headers, **key_header})


async def test_payment_succeeds_with_listing_price(client, auth, seed_listing) -> None:
    listing = await seed_listing(uuid.uuid4(), price_minor=4999, currency="USD")
    r = await pay(client, auth(uuid.uuid4()), pay_body(listing, APPROVE, 4999, "USD"), key=str(uuid.uuid4()))
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["status"], body["amount_minor"], body["currency"]) == ("succeeded", 4999, "USD")
    assert (body["card_last4"], body["card_brand"]) == ("4242", "visa")
    assert r.headers["Idempotent-Replayed"] == "false"


async def test_repeat_with_same_key_returns_same_payment_without_charging(
    client, auth, seed_listing, processor
) -> None:
    listing, headers, key = await seed_listing(uuid.uuid4()), auth(uuid.uuid4()), str(uuid.uuid4())
    first = await pay(client, headers, pay_body(listing), key)
    charges = processor.charges
    second = await pay(client, headers, pay_body(listing), key)
    assert (second.status_code, second.json()["id"]) == (201, first.json()["id"])
    assert second.headers["Idempotent-Replayed"] == "true"
    assert processor.charges == charges


async def test_repeat_of_declined_payment_returns_same_402(client, auth, seed_listing) -> None:
    listing, headers, key = await seed_listing(uuid.uuid4()), auth(uuid.uuid4()), str(uuid.uuid4())
    first = await pay(client, headers, pay_body(listing, INSUFFICIENT), key)
    second = await pay(client, headers, pay_body(listing, INSUFFICIENT), key)
    assert first.status_code == second.status_code == 402
    assert first.json()["decline_code"] == "card_declined"  # the processor's reason is not disclosed
    assert second.json()["id"] == first.json()["id"]


async def test_same_key_with_different_body_is_rejected(client, auth, seed_listing) -> None:
    owner, headers, key = uuid.uuid4(), auth(uuid.uuid4()), str(uuid.uuid4())
    first_listing, other_listing = await seed_listing(owner), await seed_listing(owner)
    assert (await pay(client, headers, pay_body(first_listing), key)).status_code == 201
    r = await pay(client, headers, pay_body(other_listing), key)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "idempotency_key_reused"


async def test_concurrent_repeats_charge_once(client, auth, seed_listing, processor, engine) -> None:
    listing, headers, key = await seed_listing(uuid.uuid4()), auth(uuid.uuid4()), str(uuid.uuid4())
    charges = processor.charges
    results = await asyncio.gather(*(pay(client, headers, pay_body(listing), key) for _ in range(8)))
    assert {r.status_code for r in results} == {201}
    assert len({r.json()["id"] for r in results}) == 1
    assert processor.charges == charges + 1
    async with engine.connect() as conn:
        count = await conn.scalar(select(func.count()).where(Payment.idempotency_key == key))
    assert count == 1


async def test_concurrent_buyers_of_one_listing_only_one_succeeds(client, auth, seed_listing) -> None:
    listing = await seed_listing(uuid.uuid4())
    results = await asyncio.gather(
        *(pay(client, auth(uuid.uuid4()), pay_body(listing), str(uuid.uuid4())) for _ in range(5))
    )
    assert sorted(r.status_code for r in results) == [201, 409, 409, 409, 409]


async def test_idempotency_key_is_required(client, auth, seed_listing) -> None:
    listing = await seed_listing(uuid.uuid4())
    r = await pay(client, auth(uuid.uuid4()), pay_body(listing))
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "idempotency_key_required"


async def test_buyer_cannot_buy_own_listing(client, auth, seed_listing) -> None:
    owner = uuid.uuid4()
    listing = await seed_listing(owner)
    r = await pay(client, auth(owner), pay_body(listing), str(uuid.uuid4()))
    assert (r.status_code, r.json()["error"]["code"]) == (403, "own_listing")


async def test_listing_bought_by_someone_else_is_sold(client, auth, seed_listing) -> None:
    listing = await seed_listing(uuid.uuid4())
    assert (await pay(client, auth(uuid.uuid4()), pay_body(listing), str(uuid.uuid4()))).status_code == 201
    r = await pay(client, auth(uuid.uuid4()), pay_body(listing), str(uuid.uuid4()))
    assert (r.status_code, r.json()["error"]["code"]) == (409, "listing_sold")


async def test_listing_marked_sold_by_marketplace_cannot_be_bought(client, auth, seed_listing) -> None:
    listing = await seed_listing(uuid.uuid4(), status="sold")
    r = await pay(client, auth(uuid.uuid4()), pay_body(listing), str(uuid.uuid4()))
    assert r.status_code == 409


async def test_declined_payment_leaves_listing_available(client, auth, seed_listing) -> None:
    listing = await seed_listing(uuid.uuid4())
    assert (
        await pay(client, auth(uuid.uuid4()), pay_body(listing, DECLINE), str(uuid.uuid4()))
    ).status_code == 402
    r = await pay(client, auth(uuid.uuid4()), pay_body(listing), str(uuid.uuid4()))
    assert r.status_code == 201


async def test_unknown_listing_is_404(client, auth) -> None:
    r = await pay(client, auth(uuid.uuid4()), pay_body(uuid.uuid4()), str(uuid.uuid4()))
    assert (r.status_code, r.json()["error"]["code"]) == (404, "listing_not_found")


async def test_anonymous_caller_is_401(client, seed_listing) -> None:
    listing = await seed_listing(uuid.uuid4())
    r = await pay(client, {}, pay_body(listing), str(uuid.uuid4()))
    assert r.status_code == 401


async def test_expired_card_is_422(client, auth, seed_listing) -> None:
    listing = await seed_listing(uuid.uuid4())
    r = await pay(
        client, auth(uuid.uuid4()), pay_body(listing, {**APPROVE, "exp_year": 2001}), str(uuid.uuid4())
    )
    assert r.status_code == 422


async def test_processor_outage_stores_nothing_and_is_retryable(client, auth, seed_listing, engine) -> None:
    listing, key = await seed_listing(uuid.uuid4()), str(uuid.uuid4())
    r = await pay(client, auth(uuid.uuid4()), pay_body(listing, PROCESSOR_ERROR), key)
    assert (r.status_code, r.json()["error"]["code"]) == (503, "processor_unavailable")
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).where(Payment.idempotency_key == key)) == 0


async def test_full_card_number_is_never_stored(client, auth, seed_listing, engine) -> None:
    listing = await seed_listing(uuid.uuid4())
    r = await pay(client, auth(uuid.uuid4()), pay_body(listing), str(uuid.uuid4()))
    assert r.status_code == 201
    async with engine.connect() as conn:
        payments = await conn.scalar(
            text("SELECT count(*) FROM payments WHERE payments::text LIKE :n"), {"n": "%4242424242%"}
        )
        outbox = await conn.scalar(
            text("SELECT count(*) FROM outbox WHERE envelope::text LIKE :n"), {"n": "%4242424242%"}
        )
    assert (payments, outbox) == (0, 0)


async def test_buyer_reads_own_payment(client, auth, seed_listing) -> None:
    listing, buyer = await seed_listing(uuid.uuid4()), uuid.uuid4()
    created = (await pay(client, auth(buyer), pay_body(listing), str(uuid.uuid4()))).json()
    r = await client.get(f"/api/payments/{created['id']}", headers=auth(buyer))
    assert r.status_code == 200
    assert r.json() == created


async def test_other_user_cannot_read_payment(client, auth, seed_listing) -> None:
    listing = await seed_listing(uuid.uuid4())
    created = (await pay(client, auth(uuid.uuid4()), pay_body(listing), str(uuid.uuid4()))).json()
    r = await client.get(f"/api/payments/{created['id']}", headers=auth(uuid.uuid4()))
    assert r.status_code == 404


async def test_ready_with_every_backend(client) -> None:
    r = await client.get("/readyz")
    assert r.status_code == 200, r.text
    # No Redis: the service caches nothing (its manifest no longer asks for it).
    assert r.json()["checks"] == {"postgres": "ok", "rabbitmq": "ok"}


async def test_buyer_lists_own_payments_newest_first(client, auth, seed_listing) -> None:
    first, second, buyer = await seed_listing(uuid.uuid4()), await seed_listing(uuid.uuid4()), uuid.uuid4()
    older = (await pay(client, auth(buyer), pay_body(first), str(uuid.uuid4()))).json()
    newer = (await pay(client, auth(buyer), pay_body(second, DECLINE), str(uuid.uuid4()))).json()
    await pay(client, auth(uuid.uuid4()), pay_body(second), str(uuid.uuid4()))  # someone else's
    r = await client.get("/api/payments", headers=auth(buyer))
    assert r.status_code == 200, r.text
    assert r.json()["items"] == [newer, older]
    succeeded = await client.get("/api/payments", params={"status": "succeeded"}, headers=auth(buyer))
    assert succeeded.json()["items"] == [older]
