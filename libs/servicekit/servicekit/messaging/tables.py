"""The ``outbox`` and ``processed_messages`` tables a service adds to its own metadata.

Services own their migrations: call :func:`add_messaging_tables` on the service's ``MetaData`` so
``alembic revision --autogenerate`` picks both tables up. servicekit queries them with lightweight
table clauses, so it never needs the service's metadata object.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

OUTBOX = "outbox"
PROCESSED = "processed_messages"


def outbox_table(metadata: sa.MetaData) -> sa.Table:
    """Events written in the business transaction, published later by the relay (in ``id`` order)."""
    if OUTBOX in metadata.tables:
        return metadata.tables[OUTBOX]
    return sa.Table(
        OUTBOX,
        metadata,
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("envelope", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Index("ix_outbox_unsent", "id", postgresql_where=sa.text("sent_at IS NULL")),
    )


def processed_messages_table(metadata: sa.MetaData) -> sa.Table:
    """Ids of consumed events whose effects are committed (the idempotent consumer's marker)."""
    if PROCESSED in metadata.tables:
        return metadata.tables[PROCESSED]
    return sa.Table(
        PROCESSED,
        metadata,
        sa.Column("message_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def add_messaging_tables(metadata: sa.MetaData) -> tuple[sa.Table, sa.Table]:
    """Add ``outbox`` and ``processed_messages`` to *metadata*; returns both."""
    return outbox_table(metadata), processed_messages_table(metadata)


# Lightweight clauses used by servicekit's own queries.
outbox_t = sa.table(
    OUTBOX,
    sa.column("id", sa.BigInteger),
    sa.column("event_id", UUID(as_uuid=True)),
    sa.column("event_type", sa.String),
    sa.column("envelope", JSONB),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("sent_at", sa.DateTime(timezone=True)),
    sa.column("attempts", sa.Integer),
    sa.column("last_error", sa.Text),
)
processed_t = sa.table(
    PROCESSED,
    sa.column("message_id", UUID(as_uuid=True)),
    sa.column("event_type", sa.String),
    sa.column("processed_at", sa.DateTime(timezone=True)),
)
