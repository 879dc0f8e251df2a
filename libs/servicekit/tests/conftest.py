"""servicekit test fixtures over the session's real servers (postgres_server, redis_server,
rabbitmq_server from infra/local/pytest_plugin.py)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import BaseModel
from servicekit.messaging.envelope import registry
from servicekit.messaging.tables import add_messaging_tables
from servicekit.settings import Settings
from servicekit.testing import Database, create_database, drop_database, settings_for
from sqlalchemy.ext.asyncio import create_async_engine

PUBLISHER = "skpub-svc"
CONSUMER = "skcon-svc"
PING = "sktest.ping"
UNROUTED = "sktest.unrouted"
#: Short retry delays so a poison message reaches the DLQ in well under a second.
DELAYS = [150, 300]


class Ping(BaseModel):
    """Test event payload."""

    n: int
    note: str = ""


if (PING, 1) not in registry:
    registry.register(PING, Ping)


def build_metadata() -> sa.MetaData:
    """Messaging tables plus a table the test handlers write to."""
    metadata = sa.MetaData()
    add_messaging_tables(metadata)
    sa.Table(
        "applied",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
    )
    return metadata


async def create_schema(database: Database) -> None:
    """Create the test tables in *database*."""
    engine = create_async_engine(
        f"postgresql+asyncpg://{database.user}:{database.password}@{database.host}:{database.port}/{database.name}"
    )
    async with engine.begin() as conn:
        await conn.run_sync(build_metadata().create_all)
    await engine.dispose()


def build_spec(delays: list[int]) -> Any:
    """A PlatformSpec with the two test services (publisher, consumer)."""
    from infra.spec import (
        Needs,
        PlatformSpec,
        RabbitNeed,
        ServiceManifest,
        ServiceOverrides,
        ServiceSpec,
        StackConfig,
    )

    config = StackConfig.model_validate(
        {
            "environment": "dev",
            "namespace": "sk-test",
            "domain": "sk.example.com",
            "registry": "registry.example.com/sk",
            "rabbitmq": {"retryDelaysMs": delays},
        }
    )

    def service(name: str, **need: list[str]) -> ServiceSpec:
        manifest = ServiceManifest(name=name, route=f"/api/{name}", needs=Needs(rabbitmq=RabbitNeed(**need)))
        return ServiceSpec(manifest=manifest, overrides=ServiceOverrides(), path=Path("."))

    return PlatformSpec(
        stack="sktest",
        config=config,
        services=(
            # session.revoked: the platform's revocation stream exists (every service follows it).
            service(PUBLISHER, publishes=[PING, UNROUTED, "session.revoked"]),
            service(CONSUMER, consumes=[PING], publishes=[PING]),
        ),
    )


def build_definitions(
    admin_user: str, admin_password: str | None, delays: list[int] = DELAYS
) -> tuple[dict[str, Any], dict[str, str]]:
    """The platform's real rendered definitions for the test services (+ admin rights on `market`)."""
    from infra.render.rabbitmq import render_definitions

    passwords = {PUBLISHER: secrets.token_urlsafe(12), CONSUMER: secrets.token_urlsafe(12)}
    if admin_password is not None:
        passwords[admin_user] = admin_password
    definitions = render_definitions(build_spec(delays), passwords)
    if admin_password is None:
        definitions["permissions"].append(
            {"user": admin_user, "vhost": "market", "configure": ".*", "write": ".*", "read": ".*"}
        )
    return definitions, passwords


@pytest.fixture(scope="session")
def sk_broker(rabbitmq_server: Any) -> dict[str, str]:
    """The shared broker with the test services' definitions imported; returns their passwords."""
    definitions, passwords = build_definitions(rabbitmq_server.user, None)
    rabbitmq_server.import_definitions(definitions)
    return passwords


@pytest.fixture
async def database(postgres_server: Any) -> AsyncIterator[Database]:
    """A fresh database with the test schema."""
    db = await create_database(postgres_server)
    await create_schema(db)
    yield db
    await drop_database(postgres_server, db)


def make_settings(name: str = "demo-svc", **kwargs: Any) -> Settings:
    """Settings for a test app (no backends unless given)."""
    return settings_for(Settings, name, **kwargs)
