"""listings, outbox, processed_messages

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Hand-reviewed from autogenerate. ``outbox`` and ``processed_messages`` are servicekit's messaging
tables (servicekit.messaging.tables), created by servicekit.migrations.create_messaging_tables.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from servicekit.migrations import create_messaging_tables, drop_messaging_tables

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the listings table and the messaging tables."""
    op.create_table(
        "listings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("price_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("sold_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name="ck_listings_currency_iso4217"),
        sa.CheckConstraint("status IN ('active', 'sold')", name="ck_listings_status"),
        sa.CheckConstraint("price_minor >= 0", name="ck_listings_price_minor_non_negative"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_listings_owner_id", "listings", ["owner_id"])
    op.create_index("ix_listings_status_created_at", "listings", ["status", "created_at"])

    create_messaging_tables(op)


def downgrade() -> None:
    """Drop everything :func:`upgrade` created."""
    drop_messaging_tables(op)
    op.drop_index("ix_listings_status_created_at", table_name="listings")
    op.drop_index("ix_listings_owner_id", table_name="listings")
    op.drop_table("listings")
