"""payment-svc test fixtures: its own database, Redis ACL user and RabbitMQ vhost on the session's
real servers, the app with its lifespan running, and helpers that drive it through real events."""

from __future__ import annotations

import asyncio
import json
import secrets
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
from servicekit.auth import issue_access_token
from servicekit.testing import Database, alembic_upgrade, app_client, create_database, settings_for
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from infra.render.rabbitmq import render_definitions
from infra.spec import load_spec

SERVICE = "payment-svc"
SERVICE_DIR = Path(__file__).resolve().parents[1]
ALEMBIC_INI = SERVICE_DIR / "migrations" / "alembic.ini"


def isolated_definitions(
    service: str, vhost: str, user: str, password: str, admin: str
) -> tuple[dict[str, Any], list[int]]:
    """The platform's real definitions, moved to *vhost*, keeping only *service*'s user (renamed *user*).

    The service then runs with exactly its production permissions, isolated from other tests.
    """
    spec = load_spec("dev")
    passwords = {s.name: secrets.token_urlsafe(8) for s in spec.services if s.manifest.needs.rabbitmq}
    defs = render_definitions(spec, passwords)
    defs["vhosts"] = [{"name": vhost}]
    defs["users"] = [{**u, "name": user} for u in defs["users"] if u["name"] == service]
    defs["users"][0].pop("password_hash")
    defs["users"][0]["password"] = password
    defs["permissions"] = [{**p, "user": user} for p in defs["permissions"] if p["user"] == service]
    defs["permissions"].append(
        {"user": admin, "vhost": vhost, "configure": ".*", "write": ".*", "read": ".*"}
    )
    defs["topic_permissions"] = [
        {**p, "user": user} for p in defs["topic_permissions"] if p["user"] == service
    ]
    for key in ("permissions", "topic_permissions", "exchanges", "queues", "bindings"):
        for item in defs[key]:
            item["vhost"] = vhost
    return defs, list(spec.config.rabbitmq.retry_delays_ms)


async def add_redis_user(server: Any, service: str) -> tuple[str, str]:
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


@pytest.fixture(scope="session")
async def payment_db(postgres_server: Any) -> Database:
    """A fresh database for payment-svc's tests."""
    return await create_database(postgres_server, "payment_svc_test")


@pytest.fixture(scope="session")
async def payment_settings(payment_db: Database, redis_server: Any, rabbitmq_server: Any) -> Settings:
    """Settings with the service's own least-privilege Redis and RabbitMQ users, migrated database."""
    vhost = f"payment-test-{secrets.token_hex(3)}"
    rabbit_user, rabbit_password = f"{SERVICE}-{secrets.token_hex(3)}", secrets.token_urlsafe(12)
    defs, delays = isolated_definitions(SERVICE, vhost, rabbit_user, rabbit_password, rabbitmq_server.user)
    await asyncio.to_thread(rabbitmq_server.import_definitions, defs)
    redis_user, redis_password = await add_redis_user(redis_server, SERVICE)
    settings = settings_for(
        Settings,
        SERVICE,
        database=payment_db,
        rabbitmq=rabbitmq_server,
        rabbitmq_vhost=vhost,
        rabbitmq_user=rabbit_user,
        rabbitmq_password=rabbit_password,
        rabbitmq_retry_delays_ms=delays,
        redis_host=redis_server.host,
        redis_port=redis_server.port,
        redis_db=2,
        redis_user=redis_user,
        redis_password=redis_password,
        log_level="WARNING",
    )
    await alembic_upgrade(ALEMBIC_INI, settings)
    return settings


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
    return {"Authorization": f"Bearer {issue_access_token(settings, str(user_id))}"}


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
