"""Messaging tables (outbox, processed_messages), created from servicekit's definitions."""

import sqlalchemy as sa
from alembic import op
from servicekit.messaging.tables import add_messaging_tables

revision = "0001"
down_revision = None


def upgrade() -> None:
    metadata = sa.MetaData()
    add_messaging_tables(metadata)
    metadata.create_all(op.get_bind())


def downgrade() -> None:
    metadata = sa.MetaData()
    add_messaging_tables(metadata)
    metadata.drop_all(op.get_bind())
