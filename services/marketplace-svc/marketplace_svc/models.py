"""marketplace-svc tables: listings (plus servicekit's outbox and processed-messages tables)."""

from __future__ import annotations

import uuid
from datetime import datetime

from servicekit.messaging.tables import add_messaging_tables
from sqlalchemy import BigInteger, CheckConstraint, DateTime, Index, String, Text, Uuid, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

STATUSES = ("active", "sold")


class Base(DeclarativeBase):
    """marketplace-svc's own declarative base; its metadata is what Alembic compares against."""


class Listing(Base):
    """Something for sale. Prices are integers in the currency's minor unit (cents)."""

    __tablename__ = "listings"
    __table_args__ = (
        CheckConstraint("price_minor >= 0", name="ck_listings_price_minor_non_negative"),
        CheckConstraint("currency ~ '^[A-Z]{3}$'", name="ck_listings_currency_iso4217"),
        CheckConstraint("status IN ('active', 'sold')", name="ck_listings_status"),
        Index("ix_listings_status_created_at", "status", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    price_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    sold_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


#: ``outbox`` (listing events) and ``processed_messages`` (payment.succeeded dedup) live in this database.
add_messaging_tables(Base.metadata)
