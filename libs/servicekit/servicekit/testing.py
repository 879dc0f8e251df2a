"""pytest helpers for services: settings from the session's real servers, a fresh database, Alembic,
and an httpx client over ASGITransport with the app's lifespan running.

The server objects come from the repo's fixtures (``postgres_server``, ``redis_server``,
``rabbitmq_server``); only their connection attributes are used (duck typing, no infra import)::

    db = await create_database(postgres_server, "marketplace_test")
    settings = settings_for(MarketSettings, "marketplace-svc", database=db, redis=redis_server,
                            rabbitmq=rabbitmq_server)
    await alembic_upgrade(SERVICE_DIR / "migrations" / "alembic.ini", settings)
    async with app_client(create_app_for(settings)) as client:
        assert (await client.get("/readyz")).status_code == 200
"""

from __future__ import annotations

import asyncio
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from servicekit.settings import Settings

S = TypeVar("S", bound=Settings)
#: A fixed, long-enough signing key for tests.
TEST_JWT_SECRET = "test-signing-key-" + "0" * 32
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Database:
    """A database on a test PostgreSQL server, with the credentials of its owner."""

    host: str
    port: int
    name: str
    user: str
    password: str

    @property
    def url(self) -> str:
        """asyncpg DSN of the database."""
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.name}"


async def _admin(server: Any) -> asyncpg.Connection:
    return await asyncpg.connect(
        host=server.host,
        port=server.port,
        user=getattr(server, "superuser", "postgres"),
        password=server.password,
        database="postgres",
        timeout=10,
    )


async def create_database(server: Any, name: str | None = None) -> Database:
    """Create a fresh database (and an owner role of the same name) on *server*."""
    name = name or f"t_{uuid.uuid4().hex[:12]}"
    if not _IDENT.match(name):
        raise ValueError(f"invalid database name {name!r}")
    password = secrets.token_urlsafe(12)
    conn = await _admin(server)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", name)
        verb = "ALTER" if exists else "CREATE"
        await conn.execute(f"{verb} ROLE \"{name}\" LOGIN PASSWORD '{password}'")
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}" OWNER "{name}"')
    finally:
        await conn.close()
    return Database(server.host, int(server.port), name, name, password)


async def drop_database(server: Any, database: Database) -> None:
    """Drop *database* (disconnecting its sessions) and its owner role."""
    conn = await _admin(server)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')
        await conn.execute(f'DROP ROLE IF EXISTS "{database.user}"')
    finally:
        await conn.close()


def settings_for(
    cls: type[S],
    service_name: str,
    *,
    database: Database | None = None,
    redis: Any = None,
    redis_db: int = 0,
    rabbitmq: Any = None,
    rabbitmq_vhost: str = "market",
    rabbitmq_user: str | None = None,
    rabbitmq_password: str | None = None,
    **overrides: Any,
) -> S:
    """Settings of *cls* pointing at the given test servers; everything else from *overrides*."""
    values: dict[str, Any] = {
        "service_name": service_name,
        "environment": "test",
        "jwt_secret": TEST_JWT_SECRET,
        "postgres_host": None,
        "redis_host": None,
        "rabbitmq_host": None,
    }
    if database is not None:
        values |= {
            "postgres_host": database.host,
            "postgres_port": database.port,
            "postgres_db": database.name,
            "postgres_user": database.user,
            "postgres_password": database.password,
        }
    if redis is not None:
        values |= {
            "redis_host": redis.host,
            "redis_port": redis.port,
            "redis_db": redis_db,
            "redis_user": getattr(redis, "username", None),
            "redis_password": getattr(redis, "password", None),
        }
    if rabbitmq is not None:
        values |= {
            "rabbitmq_host": rabbitmq.host,
            "rabbitmq_port": rabbitmq.port,
            "rabbitmq_vhost": rabbitmq_vhost,
            "rabbitmq_user": rabbitmq_user or rabbitmq.user,
            "rabbitmq_password": rabbitmq_password or rabbitmq.password,
        }
    values |= overrides
    return cls(**values)


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


@asynccontextmanager
async def app_client(app: FastAPI, base_url: str = "http://testserver") -> AsyncIterator[AsyncClient]:
    """An AsyncClient talking to *app* in-process, with startup/shutdown (the lifespan) around it."""
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url=base_url) as client,
    ):
        yield client
