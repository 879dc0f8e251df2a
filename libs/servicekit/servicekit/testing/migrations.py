"""Alembic in tests: upgrade/downgrade with given settings, and the two checks every service runs
on its migrations (a clean round trip; head matches the models)."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import create_async_engine

from servicekit.settings import Settings
from servicekit.testing.app import settings_for
from servicekit.testing.database import public_tables, scratch_database

VERSION_TABLE = "alembic_version"


def _alembic_config(alembic_ini: Path, settings: Settings) -> Any:
    from alembic.config import Config

    config = Config(str(alembic_ini))
    script_location = config.get_main_option("script_location") or "."
    if not Path(script_location).is_absolute():
        config.set_main_option("script_location", str((alembic_ini.parent / script_location).resolve()))
    config.attributes["settings"] = settings
    return config


async def alembic_upgrade(alembic_ini: Path, settings: Settings, revision: str = "head") -> None:
    """``alembic upgrade`` with *settings*' database (in a thread: env.py runs its own event loop)."""
    from alembic import command

    await asyncio.to_thread(command.upgrade, _alembic_config(Path(alembic_ini), settings), revision)


async def alembic_downgrade(alembic_ini: Path, settings: Settings, revision: str = "base") -> None:
    """``alembic downgrade`` with *settings*' database."""
    from alembic import command

    await asyncio.to_thread(command.downgrade, _alembic_config(Path(alembic_ini), settings), revision)


def _service(alembic_ini: Path, service: str | None) -> str:
    """The service's name: given, or its folder (``services/<name>/migrations/alembic.ini``)."""
    return service or Path(alembic_ini).resolve().parents[1].name


async def assert_migrations_roundtrip(
    server: Any,
    alembic_ini: Path,
    settings_cls: type[Settings],
    tables: Collection[str],
    *,
    service: str | None = None,
) -> None:
    """On a scratch database of the PostgreSQL *server*: ``upgrade head`` creates exactly *tables*
    (plus ``alembic_version``), ``downgrade base`` leaves only ``alembic_version``, and a second
    ``upgrade head`` creates them all again (the downgrade left nothing behind)."""
    expected = {*tables, VERSION_TABLE}
    async with scratch_database(server) as database:
        settings = settings_for(settings_cls, _service(alembic_ini, service), database=database)
        await alembic_upgrade(alembic_ini, settings)
        assert await public_tables(database) == expected, "upgrade head"
        await alembic_downgrade(alembic_ini, settings)
        assert await public_tables(database) == {VERSION_TABLE}, "downgrade base"
        await alembic_upgrade(alembic_ini, settings)
        assert await public_tables(database) == expected, "upgrade head after downgrade base"


async def migration_diff(
    server: Any,
    alembic_ini: Path,
    settings_cls: type[Settings],
    metadata: MetaData,
    *,
    service: str | None = None,
) -> list[Any]:
    """Alembic's autogenerate diff (types compared) between *metadata* and a scratch database of
    *server* upgraded to head: ``[]`` when the migrations build exactly what the models declare."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    async with scratch_database(server) as database:
        settings = settings_for(settings_cls, _service(alembic_ini, service), database=database)
        await alembic_upgrade(alembic_ini, settings)
        engine = create_async_engine(settings.database_url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda sync: compare_metadata(
                        MigrationContext.configure(sync, opts={"compare_type": True}), metadata
                    )
                )
        finally:
            await engine.dispose()


async def assert_models_match_migrations(
    server: Any,
    alembic_ini: Path,
    settings_cls: type[Settings],
    metadata: MetaData,
    *,
    service: str | None = None,
) -> None:
    """Head's schema is *metadata*'s: :func:`migration_diff` is empty (no pending migration)."""
    diff = await migration_diff(server, alembic_ini, settings_cls, metadata, service=service)
    assert diff == [], f"migrations and models differ: {diff}"
