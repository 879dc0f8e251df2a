"""SQLAlchemy 2 async engine (asyncpg), sessions and the ``SessionDep`` dependency."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import event, exc, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from servicekit.settings import Settings

#: Seconds asyncpg waits for a TCP connection / a statement before failing.
CONNECT_TIMEOUT_S = 2.0
COMMAND_TIMEOUT_S = 30.0
#: A pooled connection that sat idle longer than this is pinged before use. SQLAlchemy's own
#: ``pool_pre_ping`` pings on every checkout, which with asyncpg costs three round trips (BEGIN, ``;``,
#: ROLLBACK) per transaction; a connection returned moments ago is trusted instead.
PRE_PING_IDLE_S = 1.0
_IDLE_SINCE = "servicekit_idle_since"


def create_engine(
    settings: Settings, *, pre_ping_idle_s: float = PRE_PING_IDLE_S, **overrides: object
) -> AsyncEngine:
    """The service's async engine, pooled per the ``DB_POOL_*`` settings, with an idle-aware pre-ping.

    A connection idle for more than *pre_ping_idle_s* (``0`` = always) is pinged at checkout and,
    when the ping fails, the whole pool is refreshed, so the service recovers from a database restart
    by itself. If the database restarts while connections are busy, the first statement on a broken
    one fails with a disconnect error, which also refreshes the pool: that one operation fails (a
    consumer requeues its delivery), the next ones get fresh connections.
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
        "pool_timeout": 10,
        "connect_args": {
            "timeout": CONNECT_TIMEOUT_S,
            "command_timeout": COMMAND_TIMEOUT_S,
            "server_settings": {"application_name": settings.service_name},
        },
    }
    options.update(overrides)
    engine = create_async_engine(settings.database_url, **options)  # type: ignore[arg-type]
    if not options.get("pool_pre_ping"):
        _ping_idle_connections(engine, pre_ping_idle_s)
    return engine


def _ping_idle_connections(engine: AsyncEngine, idle_s: float) -> None:
    """Ping connections idle for more than *idle_s* at checkout; a failure refreshes the pool."""
    sync_engine = engine.sync_engine
    dialect = sync_engine.dialect

    def on_checkin(dbapi_connection: Any, record: Any) -> None:
        if dbapi_connection is not None:
            record.info[_IDLE_SINCE] = time.monotonic()

    def on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)  # a new connection has none: it was just opened
        if since is None or time.monotonic() - since <= idle_s:
            return
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:
            # Most likely a restart: every older connection is stale too. The pool reconnects.
            raise exc.InvalidatePoolError(f"pre-ping failed: {error!r}") from error

    event.listen(sync_engine, "checkin", on_checkin)
    event.listen(sync_engine, "checkout", on_checkout)


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
