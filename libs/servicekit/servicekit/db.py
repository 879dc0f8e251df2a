"""SQLAlchemy 2 async engine (asyncpg), sessions and the ``SessionDep`` dependency."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from servicekit.settings import Settings

#: Seconds asyncpg waits for a TCP connection / a statement before failing.
CONNECT_TIMEOUT_S = 2.0
COMMAND_TIMEOUT_S = 30.0


def create_engine(settings: Settings, **overrides: object) -> AsyncEngine:
    """The service's async engine, pooled per the ``DB_POOL_*`` settings, with pre-ping.

    Pre-ping replaces connections broken by a database restart, so the service recovers by itself.
    """
    if not settings.postgres_enabled:
        raise RuntimeError(
            f"{settings.service_name}: POSTGRES_HOST is not set\n"
            "hint: set POSTGRES_HOST/PORT/DB/USER/PASSWORD or drop needs.postgres"
        )
    options: dict[str, object] = {
        "pool_size": settings.db_pool_size,
        "max_overflow": settings.db_max_overflow,
        "pool_recycle": settings.db_pool_recycle_seconds,
        "pool_pre_ping": True,
        "pool_timeout": 10,
        "connect_args": {
            "timeout": CONNECT_TIMEOUT_S,
            "command_timeout": COMMAND_TIMEOUT_S,
            "server_settings": {"application_name": settings.service_name},
        },
    }
    options.update(overrides)
    return create_async_engine(settings.database_url, **options)  # type: ignore[arg-type]


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded attributes after commit (handy for returning them)."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(engine: AsyncEngine) -> None:
    """Round-trip ``SELECT 1``; raises when the database is unreachable."""
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: one session per request; the handler commits what it wants kept."""
    sessionmaker: async_sessionmaker[AsyncSession] | None = getattr(
        request.app.state.runtime, "sessionmaker", None
    )
    if sessionmaker is None:
        raise RuntimeError("this service has no database (POSTGRES_HOST is not set)")
    async with sessionmaker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
