"""users, outbox

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Hand-reviewed from autogenerate. ``outbox`` is servicekit's messaging table
(servicekit.messaging.tables), created by servicekit.migrations.create_messaging_tables.
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
    """Create the users table and the outbox."""
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
    )

    create_messaging_tables(op, processed=False)


def downgrade() -> None:
    """Drop everything :func:`upgrade` created."""
    drop_messaging_tables(op, processed=False)
    op.drop_table("users")
