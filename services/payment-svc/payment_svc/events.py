"""Events payment-svc publishes (payment.succeeded/failed) and consumes (listing.created/updated/deleted)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel
from servicekit.messaging.consumer import EventHandlers
from servicekit.messaging.envelope import Envelope, register_event
from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from payment_svc.models import Listing
from payment_svc.schemas import ListingEvent


class _PaymentEvent(BaseModel):
    payment_id: uuid.UUID
    listing_id: uuid.UUID
    buyer_id: uuid.UUID
    seller_id: uuid.UUID
    amount_minor: int
    currency: str
    occurred_at: datetime


@register_event("payment.succeeded")
class PaymentSucceeded(_PaymentEvent):
    """A buyer paid for a listing; marketplace-svc marks the listing sold."""

    processor_reference: str


@register_event("payment.failed")
class PaymentFailed(_PaymentEvent):
    """A charge was declined; ``decline_code`` says why (e.g. ``insufficient_funds``)."""

    decline_code: str


async def upsert_listing(envelope: Envelope, session: AsyncSession) -> None:
    """Apply listing.created/updated/deleted to the read model, ignoring events older than what is stored.

    A deleted listing stays as a row with status ``deleted`` (a tombstone), so a late
    ``listing.updated`` cannot bring it back and payments for it are refused.
    """
    event = envelope.parse(ListingEvent)
    values = {
        "id": event.id,
        "seller_id": event.owner_id,
        "price_minor": event.price_minor,
        "currency": event.currency,
        "status": event.status,
        "source_updated_at": event.updated_at,
    }
    stmt = insert(Listing).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[Listing.id],
        set_={**{k: stmt.excluded[k] for k in values if k != "id"}, "updated_at": func.now()},
        where=Listing.source_updated_at <= stmt.excluded.source_updated_at,
    )
    await session.execute(stmt)


def build_handlers() -> EventHandlers:
    """The consumer's handlers, one per event in service.yaml ``consumes``."""
    handlers = EventHandlers()
    handlers.add("listing.created", upsert_listing)
    handlers.add("listing.updated", upsert_listing)
    handlers.add("listing.deleted", upsert_listing)
    return handlers
