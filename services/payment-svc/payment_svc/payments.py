"""Paying for a listing: idempotent per (buyer, Idempotency-Key), at most one charge per key.

One transaction per request:

1. lock the listing's read-model row (``SELECT ... FOR UPDATE``): every attempt on one listing,
   including concurrent repeats of one key, is serialized here;
2. look the key up again under that lock: a committed earlier attempt is replayed (same id, same
   status code) if the body matches, or refused (422) if it differs;
3. check the rules (exists, not the buyer's own, not sold, still at the price the buyer confirmed:
   a seller who changed it meanwhile gets the buyer a 409 ``price_changed``, never a charge), then
   the attempt limits against card testing: the buyer's and the card's attempts in the last window
   are counted under transaction-scoped advisory locks (buyer, then card), so concurrent attempts
   cannot all pass; over a limit is 429 ``too_many_payment_attempts``;
4. insert the payment as ``pending``; ``UNIQUE (buyer_id, idempotency_key)`` and a partial unique
   index (one pending/succeeded payment per listing) make a duplicate impossible even if the
   lock were bypassed;
5. charge through the processor with a key derived from the buyer and the Idempotency-Key (a real
   provider deduplicates on it too), record the outcome and queue the event in the outbox;
6. commit. If the processor's outcome is unknown the transaction rolls back and the client
   retries with the same key: the provider returns the first outcome instead of charging again.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from servicekit.errors import Conflict, Forbidden, NotFound, RateLimited, ServiceError, Unavailable
from servicekit.messaging.envelope import new_event
from servicekit.messaging.outbox import publish_in_transaction
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from payment_svc.events import PaymentFailed, PaymentSucceeded
from payment_svc.models import Listing, Payment
from payment_svc.processor import Card, PaymentMethod, PaymentProcessor, ProcessorUnavailable
from payment_svc.schemas import PaymentCreate

SUCCEEDED_CODE = 201
DECLINED_CODE = 402


class IdempotencyKeyReusedError(ServiceError):
    """The Idempotency-Key was already used with a different request body (422)."""

    status_code = 422
    code = "idempotency_key_reused"


@dataclass(frozen=True)
class AttemptLimits:
    """Payment attempts allowed per buyer and per card in a sliding window."""

    per_buyer: int
    per_card: int
    window_s: int


@dataclass(frozen=True)
class Outcome:
    """A payment and the HTTP status to answer with; ``replayed`` for a repeated key."""

    payment: Payment
    status_code: int
    replayed: bool


def fingerprint(secret: bytes, body: PaymentCreate) -> str:
    """HMAC-SHA256 of the canonical body: compares bodies without storing the card number."""
    return hmac.new(secret, body.canonical().encode(), hashlib.sha256).hexdigest()


def card_fingerprint(secret: bytes, method: PaymentMethod) -> str:
    """HMAC-SHA256 of the card number (or provider token): the same card, whoever pays with it."""
    subject = f"card:{method.number}" if isinstance(method, Card) else f"token:{method.value}"
    return hmac.new(secret, subject.encode(), hashlib.sha256).hexdigest()


async def _check_attempt_limits(
    session: AsyncSession, buyer_id: uuid.UUID, card: str, limits: AttemptLimits
) -> None:
    """429 when the buyer or the card reached its attempts in the window (locks serialize the count)."""
    for lock in (f"payment-buyer:{buyer_id}", f"payment-card:{card}"):
        await session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(lock, 0))))
    since = func.now() - func.make_interval(0, 0, 0, 0, 0, 0, limits.window_s)
    for column, value, limit in (
        (Payment.buyer_id, buyer_id, limits.per_buyer),
        (Payment.card_fingerprint, card, limits.per_card),
    ):
        count, oldest, now = (
            await session.execute(
                select(func.count(), func.min(Payment.created_at), func.now()).where(
                    column == value, Payment.created_at > since
                )
            )
        ).one()
        if count >= limit:
            retry = limits.window_s - int((now - oldest).total_seconds())
            raise RateLimited(
                "too many payment attempts; try again later",
                code="too_many_payment_attempts",
                retry_after=max(retry, 1),
            )


def processor_key(buyer_id: uuid.UUID, idempotency_key: str) -> str:
    """The key sent to the provider: stable across retries of one request, distinct per buyer."""
    return hashlib.sha256(f"{buyer_id}:{idempotency_key}".encode()).hexdigest()


async def _existing(session: AsyncSession, buyer_id: uuid.UUID, key: str) -> Payment | None:
    return await session.scalar(
        select(Payment).where(Payment.buyer_id == buyer_id, Payment.idempotency_key == key)
    )


def _replay(payment: Payment, request_fingerprint: str) -> Outcome:
    if not hmac.compare_digest(payment.request_fingerprint, request_fingerprint):
        raise IdempotencyKeyReusedError(
            "this Idempotency-Key was used with a different request body",
            details={"hint": "use a new Idempotency-Key for a different payment"},
        )
    return Outcome(payment, payment.response_code, replayed=True)


async def pay(
    session: AsyncSession,
    processor: PaymentProcessor,
    *,
    buyer_id: uuid.UUID,
    idempotency_key: str,
    body: PaymentCreate,
    secret: bytes,
    producer: str,
    limits: AttemptLimits,
) -> Outcome:
    """Pay for ``body.listing_id`` once per (buyer, key); see the module docstring for the steps."""
    request_fp = fingerprint(secret, body)
    async with session.begin():
        listing = await session.scalar(select(Listing).where(Listing.id == body.listing_id).with_for_update())
        existing = await _existing(session, buyer_id, idempotency_key)
        if existing is not None:
            return _replay(existing, request_fp)
        if listing is None or listing.status == "deleted":
            raise NotFound("listing not found", code="listing_not_found")
        if listing.seller_id == buyer_id:
            raise Forbidden("you cannot buy your own listing", code="own_listing")
        taken = await session.scalar(
            select(Payment.id).where(
                Payment.listing_id == listing.id, Payment.status.in_(("pending", "succeeded"))
            )
        )
        if listing.status != "active" or taken is not None:
            raise Conflict("listing is not available (sold)", code="listing_sold")
        if (listing.price_minor, listing.currency) != (body.amount_minor, body.currency):
            raise Conflict(
                "the listing's price is not the one you confirmed",
                code="price_changed",
                details={"amount_minor": listing.price_minor, "currency": listing.currency},
            )
        method = body.method()
        card = card_fingerprint(secret, method)
        await _check_attempt_limits(session, buyer_id, card, limits)

        payment_id = uuid.uuid4()
        inserted = await session.scalar(
            insert(Payment)
            .values(
                id=payment_id,
                buyer_id=buyer_id,
                idempotency_key=idempotency_key,
                request_fingerprint=request_fp,
                listing_id=listing.id,
                seller_id=listing.seller_id,
                amount_minor=listing.price_minor,
                currency=listing.currency,
                status="pending",
                processor=processor.name,
                processor_reference="",
                response_code=0,
                card_fingerprint=card,
            )
            .on_conflict_do_nothing(index_elements=[Payment.buyer_id, Payment.idempotency_key])
            .returning(Payment.id)
        )
        if inserted is None:
            # The same key committed meanwhile for another listing (its lock is not ours).
            existing = await _existing(session, buyer_id, idempotency_key)
            assert existing is not None
            return _replay(existing, request_fp)

        try:
            result = await processor.charge(
                listing.price_minor, listing.currency, method, processor_key(buyer_id, idempotency_key)
            )
        except ProcessorUnavailable as exc:
            raise Unavailable(
                "payment processor unavailable; retry with the same Idempotency-Key",
                code="processor_unavailable",
            ) from exc

        payment = await session.get_one(Payment, payment_id)
        payment.status = "succeeded" if result.approved else "failed"
        payment.decline_code = result.decline_code
        payment.card_last4 = result.last4
        payment.card_brand = result.brand
        payment.processor_reference = result.reference
        payment.response_code = SUCCEEDED_CODE if result.approved else DECLINED_CODE
        common = {
            "payment_id": payment_id,
            "listing_id": listing.id,
            "buyer_id": buyer_id,
            "seller_id": listing.seller_id,
            "amount_minor": listing.price_minor,
            "currency": listing.currency,
            "occurred_at": datetime.now(UTC),
        }
        if result.approved:
            listing.status = "sold"
            event = new_event(
                PaymentSucceeded(**common, processor_reference=result.reference), producer=producer
            )
        else:
            event = new_event(
                PaymentFailed(**common, decline_code=result.decline_code or "declined"), producer=producer
            )
        await publish_in_transaction(session, event)
        await session.flush()
    return Outcome(payment, payment.response_code, replayed=False)


async def get_payment(session: AsyncSession, payment_id: uuid.UUID, buyer_id: uuid.UUID) -> Payment:
    """The buyer's payment; 404 for anyone else (its existence is not disclosed)."""
    payment = await session.get(Payment, payment_id)
    if payment is None or payment.buyer_id != buyer_id or payment.status == "pending":
        raise NotFound("payment not found")
    return payment


async def list_payments(
    session: AsyncSession, buyer_id: uuid.UUID, status: str | None, limit: int
) -> list[Payment]:
    """The buyer's committed payments, newest first (``ix_payments_buyer_id_created_at``)."""
    query = select(Payment).where(Payment.buyer_id == buyer_id, Payment.status != "pending")
    if status is not None:
        query = query.where(Payment.status == status)
    query = query.order_by(Payment.created_at.desc(), Payment.id.desc()).limit(limit)
    return list(await session.scalars(query))
