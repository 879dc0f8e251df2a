"""servicekit.db: the idle-aware pre-ping (ping only connections that sat idle, refresh on failure)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from servicekit.db import create_engine, ping
from servicekit.testing import create_database
from sqlalchemy.exc import DBAPIError

from .conftest import make_settings


def _count_pings(engine: Any) -> list[int]:
    calls = [0]
    dialect = engine.sync_engine.dialect
    real = dialect.do_ping

    def counting(dbapi_connection: Any) -> bool:
        calls[0] += 1
        return real(dbapi_connection)

    dialect.do_ping = counting
    return calls


async def test_only_connections_idle_longer_than_the_threshold_are_pinged(postgres_server: Any) -> None:
    db = await create_database(postgres_server)
    engine = create_engine(make_settings(database=db), pre_ping_idle_s=0.3)
    pings = _count_pings(engine)
    try:
        await ping(engine)  # a new connection: no ping
        await ping(engine)  # returned moments ago: trusted
        assert pings[0] == 0
        await asyncio.sleep(0.4)
        await ping(engine)
        assert pings[0] == 1
    finally:
        await engine.dispose()


async def test_a_restart_is_invisible_after_idle_and_costs_one_failure_when_hot(server_factory: Any) -> None:
    pg = server_factory.postgres()
    db = await create_database(pg)
    pinged = create_engine(make_settings(database=db), pre_ping_idle_s=0)
    trusted = create_engine(make_settings(database=db), pre_ping_idle_s=3600)
    try:
        await ping(pinged)
        await ping(trusted)
        await asyncio.to_thread(pg.restart)
        await ping(pinged)  # the dead connection was pinged, the pool refreshed: no error
        with pytest.raises(DBAPIError) as failure:
            await ping(trusted)  # trusted and dead: this one statement fails...
        assert failure.value.connection_invalidated
        await ping(trusted)  # ...and the pool is fresh again
    finally:
        await pinged.dispose()
        await trusted.dispose()
