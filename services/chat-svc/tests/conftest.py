"""chat-svc test fixtures: its own database, Redis ACL user and RabbitMQ vhost on the session's real
servers, and two replicas of the app served by uvicorn on loopback ports (HTTP + WebSocket)."""

from __future__ import annotations

import asyncio
import contextlib
import json
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
from servicekit.testing import issue_test_token, provisioned_from_spec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from infra.local.ports import free_port
from infra.spec import load_spec

SERVICE = "chat-svc"
SERVICE_DIR = Path(__file__).resolve().parents[1]
ALEMBIC_INI = SERVICE_DIR / "migrations" / "alembic.ini"


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


@pytest.fixture
def serve_replica() -> Callable[[Settings], contextlib.AbstractAsyncContextManager[Replica]]:
    """``async with serve_replica(settings) as replica``: one more replica, for a test's own settings."""
    return serve


@pytest.fixture(scope="session")
async def chat_settings(
    postgres_server: Any, redis_server: Any, rabbitmq_server: Any
) -> AsyncIterator[Settings]:
    """Settings with the service's own migrated database and least-privilege Redis and RabbitMQ users
    (the platform's real definitions in a private vhost), as the dev stack's spec says."""
    servers = {"postgres": postgres_server, "redis": redis_server, "rabbitmq": rabbitmq_server}
    spec = load_spec("dev")
    async with provisioned_from_spec(
        spec, Settings, SERVICE, **servers, alembic_ini=ALEMBIC_INI, log_level="WARNING"
    ) as service:
        yield service.settings


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
    return lambda user_id: issue_test_token(chat_settings, str(user_id))


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
