"""payment-svc tables: payments and a local read model of listings (see docs/data.md)."""

from __future__ import annotations

import uuid
from datetime import datetime

from servicekit.messaging.tables import add_messaging_tables
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Index,
    MetaData,
    SmallInteger,
    String,
    UniqueConstraint,
    Uuid,
    func,
    text,
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


class Base(DeclarativeBase):
    """payment-svc's own declarative base."""

    metadata = MetaData(naming_convention=NAMING)


class Listing(Base):
    """What payment-svc knows about a listing, kept current from listing.created/listing.updated.

    ``source_updated_at`` is the publisher's ``updated_at``; an event older than the stored one is
    ignored, so redelivered or reordered events never roll the model back. ``status`` also turns
    ``sold`` locally the moment a payment for the listing succeeds.
    """

    __tablename__ = "listings"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    seller_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    price_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    source_updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Payment(Base):
    """One payment attempt, keyed by (buyer, Idempotency-Key). Never holds a full card number.

    ``pending`` exists only inside the paying transaction; committed rows are succeeded/failed.
    """

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("buyer_id", "idempotency_key", name="uq_payments_buyer_id_idempotency_key"),
        # At most one in-flight or successful payment per listing, whatever the application does.
        Index(
            "uq_payments_listing_id_active",
            "listing_id",
            unique=True,
            postgresql_where=text("status IN ('pending', 'succeeded')"),
        ),
        CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="status"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("card_last4 IS NULL OR card_last4 ~ '^[0-9]{4}$'", name="last4_only"),
        # Attempt limits (card testing): a buyer's and a card's attempts in the last window.
        Index("ix_payments_buyer_id_created_at", "buyer_id", "created_at"),
        Index("ix_payments_card_fingerprint_created_at", "card_fingerprint", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    buyer_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    idempotency_key: Mapped[str] = mapped_column(String(255))
    #: HMAC-SHA256 of the canonical request body: detects a key reused with a different body.
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    listing_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    seller_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    #: Integer amount in the currency's minor unit (cents), as marketplace-svc prices listings.
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    #: The processor's own reason (kept for support and events); clients only see ``card_declined``.
    decline_code: Mapped[str | None] = mapped_column(String(64))
    card_last4: Mapped[str | None] = mapped_column(String(4))
    card_brand: Mapped[str | None] = mapped_column(String(16))
    #: HMAC-SHA256 of the card number (or token) under the service's key: counts a card's attempts
    #: across buyers without storing the number.
    card_fingerprint: Mapped[str | None] = mapped_column(String(64))
    processor: Mapped[str] = mapped_column(String(32))
    processor_reference: Mapped[str] = mapped_column(String(128))
    #: The HTTP status the first request got; a replay answers with the same one.
    response_code: Mapped[int] = mapped_column(SmallInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


#: servicekit's ``outbox`` and ``processed_messages`` tables live in this service's database too.
add_messaging_tables(Base.metadata)
