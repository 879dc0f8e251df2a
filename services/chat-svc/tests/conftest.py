"""chat-svc test fixtures: its own database, Redis ACL user and RabbitMQ vhost on the session's real
servers, and two replicas of the app served by uvicorn on loopback ports (HTTP + WebSocket)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
import uvicorn
from chat_svc.core.config import Settings
from chat_svc.main import create_app
from chat_svc.models import Listing
from servicekit.auth import issue_access_token
from servicekit.testing import Database, alembic_upgrade, create_database, settings_for
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from infra.local.ports import free_port
from infra.render.rabbitmq import render_definitions
from infra.spec import load_spec

SERVICE = "chat-svc"
SERVICE_DIR = Path(__file__).resolve().parents[1]
ALEMBIC_INI = SERVICE_DIR / "migrations" / "alembic.ini"


def isolated_definitions(
    service: str, vhost: str, user: str, password: str, admin: str
) -> tuple[dict[str, Any], list[int]]:
    """The platform's real definitions, moved to *vhost*, keeping only *service*'s user (renamed *user*)."""
    spec = load_spec("dev")
    passwords = {s.name: secrets.token_urlsafe(8) for s in spec.services if s.manifest.needs.rabbitmq}
    defs = render_definitions(spec, passwords)
    defs["vhosts"] = [{"name": vhost}]
    defs["users"] = [{"name": user, "password": password, "tags": []}]
    defs["permissions"] = [{**p, "user": user} for p in defs["permissions"] if p["user"] == service]
    defs["permissions"].append({"user": admin, "configure": ".*", "write": ".*", "read": ".*"})
    defs["topic_permissions"] = [
        {**p, "user": user} for p in defs["topic_permissions"] if p["user"] == service
    ]
    for key in ("permissions", "topic_permissions", "exchanges", "queues", "bindings"):
        for item in defs[key]:
            item["vhost"] = vhost
    return defs, list(spec.config.rabbitmq.retry_delays_ms)


def add_redis_user(server: Any, service: str) -> tuple[str, str]:
    """An ACL user limited like production (``~<svc>:* &<svc>:*``); returns (user, password)."""
    user, password = f"{service}-{secrets.token_hex(3)}", secrets.token_urlsafe(12)
    client = server.client()
    try:
        client.acl_setuser(
            user,
            enabled=True,
            passwords=[f"+{password}"],
            keys=[f"{service}:*"],
            channels=[f"{service}:*"],
            commands=["+@all", "-@dangerous", "-@admin"],
        )
    finally:
        client.close()
    return user, password


class _Server(uvicorn.Server):
    """uvicorn inside the test's event loop; leaves the process's signal handlers alone."""

    def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]
        return contextlib.nullcontext()


@dataclass
class Replica:
    """One running chat-svc app: its base URLs and the app object."""

    app: Any
    port: int

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/api/chat/ws"


@contextlib.asynccontextmanager
async def serve(settings: Settings) -> AsyncIterator[Replica]:
    """Run one replica on a free port until the context exits."""
    app = create_app(settings)
    port = free_port()
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(30):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)
            await app.state.runtime.broker.wait_ready()
            await app.state.hub.wait_subscribed()
        yield Replica(app, port)
    finally:
        server.should_exit = True
        await task


@pytest.fixture(scope="session")
async def chat_db(postgres_server: Any) -> Database:
    """A fresh database for chat-svc's tests."""
    return await create_database(postgres_server, "chat_svc_test")


@pytest.fixture(scope="session")
async def chat_settings(chat_db: Database, redis_server: Any, rabbitmq_server: Any) -> Settings:
    """Settings with the service's own least-privilege Redis and RabbitMQ users, migrated database."""
    vhost = f"chat-test-{secrets.token_hex(3)}"
    rabbit_user, rabbit_password = f"{SERVICE}-{secrets.token_hex(3)}", secrets.token_urlsafe(12)
    defs, delays = isolated_definitions(SERVICE, vhost, rabbit_user, rabbit_password, rabbitmq_server.user)
    await asyncio.to_thread(rabbitmq_server.import_definitions, defs)
    redis_user, redis_password = add_redis_user(redis_server, SERVICE)
    settings = settings_for(
        Settings,
        SERVICE,
        database=chat_db,
        rabbitmq=rabbitmq_server,
        rabbitmq_vhost=vhost,
        rabbitmq_user=rabbit_user,
        rabbitmq_password=rabbit_password,
        rabbitmq_retry_delays_ms=delays,
        redis_host=redis_server.host,
        redis_port=redis_server.port,
        redis_db=3,
        redis_user=redis_user,
        redis_password=redis_password,
        log_level="WARNING",
    )
    await alembic_upgrade(ALEMBIC_INI, settings)
    return settings


@pytest.fixture(scope="session")
async def replicas(chat_settings: Settings) -> AsyncIterator[tuple[Replica, Replica]]:
    """Two replicas sharing the database, Redis and broker, as with ``replicas: 2``."""
    async with serve(chat_settings) as first, serve(chat_settings) as second:
        yield first, second


@pytest.fixture(scope="session")
async def http(replicas: tuple[Replica, Replica]) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the first replica."""
    async with httpx.AsyncClient(base_url=replicas[0].http, timeout=10) as client:
        yield client


@pytest.fixture(scope="session")
async def engine(chat_settings: Settings) -> AsyncIterator[AsyncEngine]:
    """A separate engine for assertions on the database."""
    eng = create_async_engine(chat_settings.database_url)
    yield eng
    await eng.dispose()


@pytest.fixture(scope="session")
async def admin_channel(rabbitmq_server: Any, chat_settings: Settings) -> AsyncIterator[Any]:
    """An admin channel on the test vhost: plays marketplace-svc and observes chat events."""
    connection = await aio_pika.connect_robust(rabbitmq_server.url(chat_settings.rabbitmq_vhost), timeout=10)
    yield await connection.channel()
    await connection.close()


@pytest.fixture
def token(chat_settings: Settings) -> Callable[[uuid.UUID], str]:
    """``token(user_id)`` -> a valid access token."""
    return lambda user_id: issue_access_token(chat_settings, str(user_id))


@pytest.fixture
def auth(token: Callable[[uuid.UUID], str]) -> Callable[[uuid.UUID], dict[str, str]]:
    """``auth(user_id)`` -> Authorization header with a fresh access token."""
    return lambda user_id: {"Authorization": f"Bearer {token(user_id)}"}


@pytest.fixture
def seed_listing(admin_channel: Any, engine: AsyncEngine, replicas: Any) -> Callable[..., Any]:
    """``await seed_listing(owner_id)`` -> listing id, delivered as listing.created through the consumer."""

    async def seed(owner_id: uuid.UUID) -> uuid.UUID:
        listing_id, now = uuid.uuid4(), datetime.now(UTC).isoformat()
        envelope = {
            "id": str(uuid.uuid4()),
            "type": "listing.created",
            "version": 1,
            "occurred_at": now,
            "producer": "marketplace-svc",
            "payload": {
                "id": str(listing_id),
                "owner_id": str(owner_id),
                "title": "lamp",
                "price_minor": 900,
                "currency": "EUR",
                "status": "active",
                "created_at": now,
                "updated_at": now,
            },
        }
        exchange = await admin_channel.get_exchange("events")
        await exchange.publish(
            aio_pika.Message(json.dumps(envelope).encode(), content_type="application/json"),
            routing_key="listing.created",
        )
        async with asyncio.timeout(5):
            while True:
                async with engine.connect() as conn:
                    found = await conn.scalar(select(Listing.id).where(Listing.id == listing_id))
                if found is not None:
                    return listing_id
                await asyncio.sleep(0.02)

    return seed
