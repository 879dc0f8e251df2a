"""Events chat-svc publishes (message.sent) and consumes (listing.created)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel
from servicekit.messaging.consumer import EventHandlers
from servicekit.messaging.envelope import Envelope, register_event
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from chat_svc.models import Listing
from chat_svc.schemas import ListingCreated


@register_event("message.sent")
class MessageSent(BaseModel):
    """A participant posted a message; ``recipient_id`` is the other participant (for notifications)."""

    message_id: int
    conversation_id: uuid.UUID
    listing_id: uuid.UUID
    sender_id: uuid.UUID
    recipient_id: uuid.UUID
    sent_at: datetime


async def record_listing(envelope: Envelope, session: AsyncSession) -> None:
    """Remember a new listing's seller (a listing's owner never changes)."""
    event = envelope.parse(ListingCreated)
    await session.execute(
        insert(Listing).values(id=event.id, seller_id=event.owner_id).on_conflict_do_nothing()
    )


def build_handlers() -> EventHandlers:
    """The consumer's handlers, one per event in service.yaml ``consumes``."""
    handlers = EventHandlers()
    handlers.add("listing.created", record_listing)
    return handlers
