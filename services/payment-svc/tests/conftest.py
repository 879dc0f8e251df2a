"""payment-svc test fixtures: its own database, Redis ACL user and RabbitMQ vhost on the session's
real servers, the app with its lifespan running, and helpers that drive it through real events."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from httpx import AsyncClient
from payment_svc.core.config import Settings
from payment_svc.main import create_app
from payment_svc.models import Listing
from payment_svc.processor import SandboxProcessor
from servicekit.testing import app_client, bearer, provisioned_from_spec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from infra.spec import load_spec

SERVICE = "payment-svc"
SERVICE_DIR = Path(__file__).resolve().parents[1]
ALEMBIC_INI = SERVICE_DIR / "migrations" / "alembic.ini"


@pytest.fixture(scope="session")
async def payment_settings(
    postgres_server: Any, redis_server: Any, rabbitmq_server: Any
) -> AsyncIterator[Settings]:
    """Settings with the service's own migrated database and least-privilege Redis and RabbitMQ users
    (the platform's real definitions in a private vhost), as the dev stack's spec says."""
    servers = {"postgres": postgres_server, "redis": redis_server, "rabbitmq": rabbitmq_server}
    spec = load_spec("dev")
    # Every test pays with the same test cards: the session's app lets them (the card-testing limits
    # have their own app in test_payments_card_testing.py).
    limits = {"payment_attempts_per_buyer": 10_000, "payment_attempts_per_card": 10_000}
    async with provisioned_from_spec(
        spec, Settings, SERVICE, **servers, alembic_ini=ALEMBIC_INI, log_level="WARNING", **limits
    ) as service:
        yield service.settings


@pytest.fixture(scope="session")
async def app(payment_settings: Settings) -> AsyncIterator[Any]:
    """The running app (lifespan entered once: consumer, outbox relay, pools)."""
    application = create_app(payment_settings)
    async with app_client(application) as client:
        await application.state.runtime.broker.wait_ready(30)
        application.state.test_client = client
        yield application


@pytest.fixture
def client(app: Any) -> AsyncClient:
    """An httpx client talking to the running app in-process."""
    return app.state.test_client


@pytest.fixture
def processor(app: Any) -> SandboxProcessor:
    """The app's sandbox processor (counts real charges)."""
    return app.state.processor


@pytest.fixture(scope="session")
async def engine(payment_settings: Settings) -> AsyncIterator[AsyncEngine]:
    """A separate engine for assertions on the database."""
    eng = create_async_engine(payment_settings.database_url)
    yield eng
    await eng.dispose()


@pytest.fixture(scope="session")
async def admin_channel(rabbitmq_server: Any, payment_settings: Settings) -> AsyncIterator[Any]:
    """An admin channel on the test vhost: plays marketplace-svc and observes payment events."""
    connection = await aio_pika.connect_robust(
        rabbitmq_server.url(payment_settings.rabbitmq_vhost), timeout=10
    )
    channel = await connection.channel()
    yield channel
    await connection.close()


def user_headers(settings: Settings, user_id: uuid.UUID) -> dict[str, str]:
    """Authorization header of a valid access token for *user_id*."""
    return bearer(settings, str(user_id))


@pytest.fixture
def auth(payment_settings: Settings) -> Callable[[uuid.UUID], dict[str, str]]:
    """``auth(user_id)`` -> headers with a fresh access token."""
    return lambda user_id: user_headers(payment_settings, user_id)


async def _publish_listing(
    channel: Any,
    event_type: str,
    listing_id: uuid.UUID,
    owner_id: uuid.UUID,
    *,
    price_minor: int = 2500,
    currency: str = "EUR",
    status: str = "active",
    updated_at: datetime | None = None,
) -> None:
    """Publish a listing event exactly as marketplace-svc does (envelope on the ``events`` exchange)."""
    now = updated_at or datetime.now(UTC)
    envelope = {
        "id": str(uuid.uuid4()),
        "type": event_type,
        "version": 1,
        "occurred_at": now.isoformat(),
        "producer": "marketplace-svc",
        "payload": {
            "id": str(listing_id),
            "owner_id": str(owner_id),
            "title": "bike",
            "price_minor": price_minor,
            "currency": currency,
            "status": status,
            "created_at": now.isoformat(),
            "updated_at": now.isoformat(),
            "sold_at": None,
        },
    }
    exchange = await channel.get_exchange("events")
    await exchange.publish(
        aio_pika.Message(json.dumps(envelope).encode(), content_type="application/json", type=event_type),
        routing_key=event_type,
    )


async def _wait_for_listing(
    engine: AsyncEngine, listing_id: uuid.UUID, predicate: Callable[[Listing], bool] = lambda _: True
) -> Listing:
    """Poll the read model until the listing exists and satisfies *predicate* (5 s at most)."""
    async with asyncio.timeout(5):
        while True:
            async with engine.connect() as conn:
                row = (await conn.execute(select(Listing).where(Listing.id == listing_id))).first()
            if row is not None:
                listing = Listing(**row._asdict())
                if predicate(listing):
                    return listing
            await asyncio.sleep(0.02)


@pytest.fixture
def seed_listing(admin_channel: Any, engine: AsyncEngine) -> Callable[..., Any]:
    """``await seed_listing(owner_id, **fields)`` -> listing id, delivered through the consumer."""

    async def seed(owner_id: uuid.UUID, **fields: Any) -> uuid.UUID:
        listing_id = uuid.uuid4()
        await _publish_listing(admin_channel, "listing.created", listing_id, owner_id, **fields)
        await _wait_for_listing(engine, listing_id)
        return listing_id

    return seed


@pytest.fixture
def publish_listing(admin_channel: Any) -> Callable[..., Any]:
    """``await publish_listing(event_type, listing_id, owner_id, **fields)`` as marketplace-svc would."""
    return lambda *args, **kwargs: _publish_listing(admin_channel, *args, **kwargs)


@pytest.fixture
def wait_for_listing(engine: AsyncEngine) -> Callable[..., Any]:
    """``await wait_for_listing(listing_id, predicate)`` -> the read-model row once it matches."""
    return lambda *args: _wait_for_listing(engine, *args)
