"""Alembic: upgrade to head and back to base on a real PostgreSQL; head matches the models."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from marketplace_svc.core.config import Settings
from marketplace_svc.models import Base
from servicekit.testing import (
    Database,
    alembic_downgrade,
    alembic_upgrade,
    create_database,
    drop_database,
    settings_for,
)
from sqlalchemy.ext.asyncio import create_async_engine

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "migrations" / "alembic.ini"


@pytest.fixture
async def scratch_db(postgres_server: Any) -> AsyncIterator[Database]:
    db = await create_database(postgres_server, "marketplace_svc_migrations")
    yield db
    await drop_database(postgres_server, db)


async def _tables(db: Database) -> set[str]:
    conn = await asyncpg.connect(db.url)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    return {row["tablename"] for row in rows}


async def test_upgrade_head_then_downgrade_base(scratch_db: Database) -> None:
    settings = settings_for(Settings, "marketplace-svc", database=scratch_db)
    await alembic_upgrade(ALEMBIC_INI, settings)
    assert await _tables(scratch_db) == {"alembic_version", "listings", "outbox", "processed_messages"}
    await alembic_downgrade(ALEMBIC_INI, settings)
    assert await _tables(scratch_db) == {"alembic_version"}


async def test_head_matches_the_models(scratch_db: Database) -> None:
    settings = settings_for(Settings, "marketplace-svc", database=scratch_db)
    await alembic_upgrade(ALEMBIC_INI, settings)
    engine = create_async_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
                )
            )
    finally:
        await engine.dispose()
    assert diff == []
