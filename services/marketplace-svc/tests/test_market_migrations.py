"""marketplace-svc's Alembic history on a real PostgreSQL: a clean round trip, and head matches the models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from marketplace_svc.core.config import Settings
from marketplace_svc.models import Base
from servicekit.testing import assert_migrations_roundtrip, assert_models_match_migrations

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "migrations" / "alembic.ini"
TABLES = {"listings", "outbox", "processed_messages"}


async def test_upgrade_head_downgrade_base_upgrade_again(postgres_server: Any) -> None:
    await assert_migrations_roundtrip(postgres_server, ALEMBIC_INI, Settings, TABLES)


async def test_head_matches_the_models(postgres_server: Any) -> None:
    await assert_models_match_migrations(postgres_server, ALEMBIC_INI, Settings, Base.metadata)
