"""Database session dependency, the Alembic helper, and readiness under a PostgreSQL outage."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa
from fastapi import APIRouter
from servicekit.app import create_app
from servicekit.db import SessionDep
from servicekit.testing import Database, alembic_downgrade, alembic_upgrade, app_client, create_database

from .conftest import make_settings

MIGRATIONS = Path(__file__).parent / "migrations_fixture" / "alembic.ini"


async def test_session_dependency_reads_and_writes(database: Database) -> None:
    router = APIRouter()

    @router.post("/applied/{n}")
    async def add(n: int, session: SessionDep) -> dict[str, int]:
        await session.execute(sa.text("INSERT INTO applied (n, event_id) VALUES (:n, 'x')"), {"n": n})
        await session.commit()
        total = await session.scalar(sa.text("SELECT count(*) FROM applied"))
        return {"count": int(total or 0)}

    async with app_client(create_app(make_settings(database=database), routers=[router])) as client:
        first = await client.post("/applied/1")
        second = await client.post("/applied/2")
        ready = await client.get("/readyz")
    assert first.json() == {"count": 1}
    assert second.json() == {"count": 2}
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"postgres": "ok"}


async def test_alembic_helper_upgrades_and_downgrades(postgres_server: Any) -> None:
    db = await create_database(postgres_server)
    settings = make_settings(database=db)

    async def tables() -> set[str]:
        conn = await asyncpg.connect(db.url)
        try:
            rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        finally:
            await conn.close()
        return {r["tablename"] for r in rows}

    await alembic_upgrade(MIGRATIONS, settings)
    assert {"outbox", "processed_messages", "alembic_version"} <= await tables()
    await alembic_downgrade(MIGRATIONS, settings)
    assert not {"outbox", "processed_messages"} & await tables()


async def test_readiness_fails_fast_when_postgres_stops_and_recovers(server_factory: Any) -> None:
    pg = server_factory.postgres()
    db = await create_database(pg)
    app = create_app(make_settings(database=db))
    async with app_client(app) as client:
        assert (await client.get("/readyz")).status_code == 200
        await asyncio.to_thread(pg.stop)

        start = time.monotonic()
        down = await client.get("/readyz")
        assert time.monotonic() - start < 2.0
        assert down.status_code == 503
        body = down.json()
        assert body["checks"]["postgres"] != "ok"
        assert body["error"]["code"] == "not_ready"
        assert "postgres" in body["error"]["message"]
        assert (await client.get("/healthz")).status_code == 200  # liveness touches nothing

        await asyncio.to_thread(pg.start)
        deadline = time.monotonic() + 10
        status = 503
        while time.monotonic() < deadline and status != 200:
            status = (await client.get("/readyz")).status_code
            if status != 200:
                await asyncio.sleep(0.2)
        assert status == 200, "readiness did not recover within 10 s of the restart"
