"""Events marketplace-svc publishes (registered at import) and the part of those it consumes."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from servicekit.messaging.envelope import register_event

from marketplace_svc.models import Listing


class _ListingEvent(BaseModel):
    id: uuid.UUID
    owner_id: uuid.UUID
    title: str
    price_minor: int
    currency: str
    status: str
    created_at: datetime
    updated_at: datetime
    sold_at: datetime | None = None

    @classmethod
    def of(cls, listing: Listing) -> _ListingEvent:
        """The payload describing *listing* as it is now."""
        return cls.model_validate(listing, from_attributes=True)


@register_event("listing.created")
class ListingCreated(_ListingEvent):
    """A listing was put up for sale."""


@register_event("listing.updated")
class ListingUpdated(_ListingEvent):
    """A listing changed (fields or status); the payload is its full new state."""


@register_event("listing.deleted")
class ListingDeleted(_ListingEvent):
    """The owner deleted a listing: its last state, ``status`` ``deleted``, ``updated_at`` the deletion."""


class PaymentSucceeded(BaseModel):
    """The part of payment-svc's ``payment.succeeded`` this service reads (other fields ignored)."""

    model_config = ConfigDict(extra="ignore")

    payment_id: uuid.UUID
    listing_id: uuid.UUID
    buyer_id: uuid.UUID
