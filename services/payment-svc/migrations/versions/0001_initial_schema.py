"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26 04:03:52.414800
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
    """Apply this revision."""
    op.create_table(
        "listings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("seller_id", sa.Uuid(), nullable=False),
        sa.Column("price_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("source_updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_listings")),
    )
    create_messaging_tables(op, named=True)
    op.create_table(
        "payments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("buyer_id", sa.Uuid(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("request_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("listing_id", sa.Uuid(), nullable=False),
        sa.Column("seller_id", sa.Uuid(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decline_code", sa.String(length=64), nullable=True),
        sa.Column("card_last4", sa.String(length=4), nullable=True),
        sa.Column("card_brand", sa.String(length=16), nullable=True),
        sa.Column("processor", sa.String(length=32), nullable=False),
        sa.Column("processor_reference", sa.String(length=128), nullable=False),
        sa.Column("response_code", sa.SmallInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "card_last4 IS NULL OR card_last4 ~ '^[0-9]{4}$'", name=op.f("ck_payments_last4_only")
        ),
        sa.CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name=op.f("ck_payments_status")),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_payments_amount_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("buyer_id", "idempotency_key", name="uq_payments_buyer_id_idempotency_key"),
    )
    op.create_index(op.f("ix_payments_listing_id"), "payments", ["listing_id"], unique=False)
    op.create_index(
        "uq_payments_listing_id_active",
        "payments",
        ["listing_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('pending', 'succeeded')"),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index(
        "uq_payments_listing_id_active",
        table_name="payments",
        postgresql_where=sa.text("status IN ('pending', 'succeeded')"),
    )
    op.drop_index(op.f("ix_payments_listing_id"), table_name="payments")
    op.drop_table("payments")
    drop_messaging_tables(op)
    op.drop_table("listings")
