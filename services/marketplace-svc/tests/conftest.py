"""marketplace-svc test fixtures: a real database (migrated with Alembic), Redis and a RabbitMQ vhost
with the platform's topology, so ``payment.succeeded`` reaches the service's own queue.

The servers (``postgres_server``, ``redis_server``, ``rabbitmq_server``) are the session's real ones
from the repo's pytest plugin; the app runs in-process with its lifespan (servicekit.testing).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from marketplace_svc.core.config import Settings
from marketplace_svc.main import create_app
from servicekit.testing import (
    Database,
    alembic_upgrade,
    app_client,
    bearer,
    create_topology_vhost,
    scratch_database,
    settings_for,
)

SERVICE_DIR = Path(__file__).resolve().parents[1]
ALEMBIC_INI = SERVICE_DIR / "migrations" / "alembic.ini"
VHOST = "marketplace-svc-tests"
RETRY_DELAYS_MS = [200]


@pytest.fixture(scope="session")
async def market_db(postgres_server: Any) -> AsyncIterator[Database]:
    """A fresh, migrated database for the session's app."""
    async with scratch_database(postgres_server, "marketplace_svc_tests") as db:
        yield db


def market_settings_for(db: Database, redis: Any, rabbitmq: Any) -> Settings:
    """Settings of marketplace-svc against the given servers."""
    return settings_for(
        Settings,
        "marketplace-svc",
        database=db,
        redis=redis,
        redis_db=1,
        rabbitmq=rabbitmq,
        rabbitmq_vhost=VHOST,
        rabbitmq_retry_delays_ms=RETRY_DELAYS_MS,
    )


@pytest.fixture(scope="session")
async def market_settings(market_db: Database, redis_server: Any, rabbitmq_server: Any) -> Settings:
    """Settings pointing at the session's real servers."""
    await create_topology_vhost(
        rabbitmq_server, VHOST, {"marketplace-svc": ["payment.succeeded"]}, RETRY_DELAYS_MS
    )
    settings = market_settings_for(market_db, redis_server, rabbitmq_server)
    await alembic_upgrade(ALEMBIC_INI, settings)
    return settings


@pytest.fixture
def settings_with_redis(
    market_settings: Settings, market_db: Database, rabbitmq_server: Any
) -> Callable[[Any], Settings]:
    """The session's settings, but with another Redis server (for tests that stop it)."""

    def make(redis: Any) -> Settings:
        return market_settings_for(market_db, redis, rabbitmq_server)

    return make


@pytest.fixture(scope="session")
async def market_app(market_settings: Settings) -> AsyncIterator[FastAPI]:
    """The app, its lifespan (consumer, outbox relay) running for the whole session."""
    app = create_app(market_settings)
    async with app_client(app):
        await app.state.runtime.broker.wait_ready(20)
        yield app


@pytest.fixture
async def client(market_app: FastAPI) -> AsyncIterator[AsyncClient]:
    """An HTTP client calling the app in-process."""
    async with AsyncClient(transport=ASGITransport(app=market_app), base_url="http://testserver") as http:
        yield http


@pytest.fixture
def token_for(market_settings: Settings) -> Callable[[uuid.UUID], dict[str, str]]:
    """``Authorization`` headers with an access token for a user id (as auth-svc would issue)."""

    def make(user_id: uuid.UUID) -> dict[str, str]:
        return bearer(market_settings, str(user_id))

    return make


@pytest.fixture
def owner() -> uuid.UUID:
    """A fresh user id per test."""
    return uuid.uuid4()


@pytest.fixture
def tag() -> str:
    """A word unique to the test, put in titles so searches see only the test's listings."""
    return f"tag{uuid.uuid4().hex[:10]}"


@pytest.fixture
def create_listing(
    client: AsyncClient, token_for: Callable[[uuid.UUID], dict[str, str]]
) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Create a listing as *owner* (asserting 201); returns its JSON."""

    async def run(owner: uuid.UUID, **fields: Any) -> dict[str, Any]:
        body = {"title": "Road bike", "description": "Steel frame", "price_minor": 25000, "currency": "EUR"}
        response = await client.post(
            "/api/marketplace/listings", json=body | fields, headers=token_for(owner)
        )
        assert response.status_code == 201, response.text
        return response.json()

    return run
