"""chat-svc tables: conversations, messages and a local read model of listing sellers."""

from __future__ import annotations

import uuid
from datetime import datetime

from servicekit.messaging.tables import add_messaging_tables
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    MetaData,
    Text,
    UniqueConstraint,
    Uuid,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: Deterministic constraint names, so migrations can drop what they create.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
MAX_BODY = 4000


class Base(DeclarativeBase):
    """chat-svc's own declarative base."""

    metadata = MetaData(naming_convention=NAMING)


class Listing(Base):
    """A listing's seller, learned from listing.created (the only fact chat-svc needs)."""

    __tablename__ = "listings"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    seller_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Conversation(Base):
    """A buyer and a listing's seller talking about that listing; one per (listing, buyer)."""

    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("listing_id", "buyer_id", name="uq_conversations_listing_id_buyer_id"),
        CheckConstraint("buyer_id <> seller_id", name="distinct_participants"),
        Index("ix_conversations_buyer_id_last_message_at", "buyer_id", "last_message_at"),
        Index("ix_conversations_seller_id_last_message_at", "seller_id", "last_message_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    listing_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    buyer_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    seller_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_message_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    def participants(self) -> tuple[uuid.UUID, uuid.UUID]:
        """The two users who may read and post."""
        return (self.buyer_id, self.seller_id)


class Message(Base):
    """One message. ``id`` is an identity column: it orders messages and backs the page cursor."""

    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint(f"char_length(body) BETWEEN 1 AND {MAX_BODY}", name="body_length"),
        Index("ix_messages_conversation_id_id", "conversation_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("conversations.id", ondelete="CASCADE")
    )
    sender_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


#: servicekit's ``outbox`` and ``processed_messages`` tables live in this service's database too.
add_messaging_tables(Base.metadata)
