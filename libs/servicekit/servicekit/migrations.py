"""Alembic helper: a service's ``migrations/env.py`` becomes a few lines.

.. code-block:: python

    from servicekit.migrations import run_migrations
    from marketplace_svc.core.config import get_settings
    from marketplace_svc.models import Base

    run_migrations(Base.metadata, get_settings)

The URL comes from the settings (``POSTGRES_*``). Tests pass their own settings through
``config.attributes["settings"]`` (see :func:`servicekit.testing.alembic_upgrade`).

A revision creates servicekit's messaging tables with :func:`create_messaging_tables` (and drops
them with :func:`drop_messaging_tables`) instead of repeating their DDL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import context
from sqlalchemy import MetaData, pool
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from servicekit.settings import Settings, get_settings


def _settings(factory: Callable[[], Settings] | Settings | None) -> Settings:
    given = context.config.attributes.get("settings")
    if isinstance(given, Settings):
        return given
    if isinstance(factory, Settings):
        return factory
    return (factory or get_settings)()


def run_migrations(
    target_metadata: MetaData, settings: Callable[[], Settings] | Settings | None = None
) -> None:
    """Run Alembic migrations offline (SQL script) or online (async engine) for the current context."""
    url = _settings(settings).database_url
    if context.is_offline_mode():
        context.configure(
            url=url,
            target_metadata=target_metadata,
            literal_binds=True,
            dialect_opts={"paramstyle": "named"},
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_run_online(url, target_metadata))


def _do_run(connection: Connection, target_metadata: MetaData) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_online(url: str, target_metadata: MetaData) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_do_run, target_metadata)
    finally:
        await engine.dispose()


def _name(op: Any, named: bool, name: str) -> Any:
    return op.f(name) if named else None


def create_messaging_tables(
    op: Any, *, outbox: bool = True, processed: bool = True, named: bool = False
) -> None:
    """Create ``outbox`` and/or ``processed_messages`` (servicekit.messaging.tables) in ``upgrade()``.

    *op* is the revision's ``alembic.op``. *named*: constraints named by the ``pk_<table>`` /
    ``uq_<table>_<column>`` convention (for metadata with that naming convention); otherwise
    PostgreSQL names them (``outbox_pkey``...). This DDL is the tables' first version and is frozen:
    shipped revisions call it, so a later change to the tables needs a new helper and a new revision.
    """
    if outbox:
        op.create_table(
            "outbox",
            sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
            sa.Column("event_id", sa.UUID(), nullable=False),
            sa.Column("event_type", sa.String(length=200), nullable=False),
            sa.Column("envelope", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
            sa.Column(
                "created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
            ),
            sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
            sa.Column("last_error", sa.Text(), nullable=True),
            sa.PrimaryKeyConstraint("id", name=_name(op, named, "pk_outbox")),
            sa.UniqueConstraint("event_id", name=_name(op, named, "uq_outbox_event_id")),
        )
        op.create_index("ix_outbox_unsent", "outbox", ["id"], postgresql_where=sa.text("sent_at IS NULL"))
    if processed:
        op.create_table(
            "processed_messages",
            sa.Column("message_id", sa.UUID(), nullable=False),
            sa.Column("event_type", sa.String(length=200), nullable=False),
            sa.Column(
                "processed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
            ),
            sa.PrimaryKeyConstraint("message_id", name=_name(op, named, "pk_processed_messages")),
        )


def drop_messaging_tables(op: Any, *, outbox: bool = True, processed: bool = True) -> None:
    """Drop what :func:`create_messaging_tables` created with the same flags (in ``downgrade()``)."""
    if processed:
        op.drop_table("processed_messages")
    if outbox:
        op.drop_index("ix_outbox_unsent", table_name="outbox")
        op.drop_table("outbox")
