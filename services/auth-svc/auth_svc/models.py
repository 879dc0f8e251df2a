"""auth-svc tables: users (plus servicekit's outbox).

Refresh-token sessions live in Redis (servicekit.sessions), not here: rotation, reuse detection and
revocation are key operations with a TTL.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from servicekit.messaging.tables import outbox_table
from sqlalchemy import DateTime, String, Uuid, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """auth-svc's own declarative base; its metadata is what Alembic compares against."""


class User(Base):
    """An account. ``email`` is stored lower-cased; the password only as an argon2id hash."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


#: ``outbox`` carries user.registered; auth-svc consumes nothing, so no ``processed_messages``.
outbox_table(Base.metadata)
