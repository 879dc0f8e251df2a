"""Test databases: a fresh database (and owner role) on a test PostgreSQL server, and its tables."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg

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


@asynccontextmanager
async def scratch_database(server: Any, name: str | None = None) -> AsyncIterator[Database]:
    """A fresh database on *server*, dropped (with its role) when the block exits."""
    database = await create_database(server, name)
    try:
        yield database
    finally:
        await drop_database(server, database)


async def public_tables(database: Database) -> set[str]:
    """Names of the tables in *database*'s ``public`` schema."""
    conn = await asyncpg.connect(database.url)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    return {row["tablename"] for row in rows}
