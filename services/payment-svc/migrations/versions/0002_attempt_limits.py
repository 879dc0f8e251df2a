"""attempt limits: card fingerprints and the indexes that count a buyer's and a card's attempts

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04 19:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.add_column("payments", sa.Column("card_fingerprint", sa.String(length=64), nullable=True))
    op.create_index("ix_payments_buyer_id_created_at", "payments", ["buyer_id", "created_at"], unique=False)
    op.create_index(
        "ix_payments_card_fingerprint_created_at",
        "payments",
        ["card_fingerprint", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_payments_card_fingerprint_created_at", table_name="payments")
    op.drop_index("ix_payments_buyer_id_created_at", table_name="payments")
    op.drop_column("payments", "card_fingerprint")
