"""Alembic helper: a service's ``migrations/env.py`` becomes a few lines.

.. code-block:: python

    from servicekit.migrations import run_migrations
    from marketplace_svc.core.config import get_settings
    from marketplace_svc.models import Base

    run_migrations(Base.metadata, get_settings)

The URL comes from the settings (``POSTGRES_*``). Tests pass their own settings through
``config.attributes["settings"]`` (see :func:`servicekit.testing.alembic_upgrade`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from alembic import context
from sqlalchemy import MetaData, pool
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
