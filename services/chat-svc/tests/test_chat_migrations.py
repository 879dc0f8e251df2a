"""chat-svc's Alembic history on a real PostgreSQL: upgrade head, downgrade base, upgrade again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
from chat_svc.core.config import Settings
from servicekit.testing import (
    alembic_downgrade,
    alembic_upgrade,
    create_database,
    drop_database,
    settings_for,
)

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "migrations" / "alembic.ini"
TABLES = {"alembic_version", "listings", "conversations", "messages", "outbox", "processed_messages"}


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    return {r["tablename"] for r in rows}


async def test_upgrade_then_downgrade_on_real_postgres(postgres_server: Any) -> None:
    db = await create_database(postgres_server, "chat_svc_migrations")
    settings = settings_for(Settings, "chat-svc", database=db)
    try:
        await alembic_upgrade(ALEMBIC_INI, settings)
        assert await _tables(db.url) == TABLES
        await alembic_downgrade(ALEMBIC_INI, settings)
        assert await _tables(db.url) == {"alembic_version"}
        await alembic_upgrade(ALEMBIC_INI, settings)
        assert await _tables(db.url) == TABLES
    finally:
        await drop_database(postgres_server, db)
