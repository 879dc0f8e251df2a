"""auth-svc test fixtures: a real database (migrated with Alembic), Redis and a RabbitMQ vhost.

The servers (``postgres_server``, ``redis_server``, ``rabbitmq_server``) are the session's real ones
from the repo's pytest plugin; the app runs in-process with its lifespan (servicekit.testing).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from auth_svc.core.config import Settings
from auth_svc.main import create_app
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from pydantic import SecretStr
from servicekit.testing import (
    TEST_SIGNING_KEY,
    Database,
    alembic_upgrade,
    app_client,
    create_topology_vhost,
    scratch_database,
    settings_for,
)

SERVICE_DIR = Path(__file__).resolve().parents[1]
ALEMBIC_INI = SERVICE_DIR / "migrations" / "alembic.ini"
PASSWORD = "correct-horse-42-battery"
VHOST = "auth-svc-tests"
MAX_FAILURES = 3
MAX_FAILURES_PER_ACCOUNT = 7
MAX_FAILURES_PER_IP = 10


@pytest.fixture(scope="session")
async def auth_db(postgres_server: Any) -> AsyncIterator[Database]:
    """A fresh database for the session's app."""
    async with scratch_database(postgres_server, "auth_svc_tests") as db:
        yield db


@pytest.fixture(scope="session")
async def auth_settings(auth_db: Database, redis_server: Any, rabbitmq_server: Any) -> Settings:
    """Settings for the real servers (database migrated); a low failed-login limit keeps tests short."""
    await create_topology_vhost(rabbitmq_server, VHOST, {}, [100])
    settings = settings_for(
        Settings,
        "auth-svc",
        database=auth_db,
        redis=redis_server,
        redis_db=0,
        rabbitmq=rabbitmq_server,
        rabbitmq_vhost=VHOST,
        login_max_failures=MAX_FAILURES,
        login_max_failures_per_account=MAX_FAILURES_PER_ACCOUNT,
        login_max_failures_per_ip=MAX_FAILURES_PER_IP,
        login_failure_window_seconds=60,
        jwt_signing_key=TEST_SIGNING_KEY,
    )
    await alembic_upgrade(ALEMBIC_INI, settings)
    return settings


@pytest.fixture
def settings_with_redis(auth_settings: Settings) -> Callable[[Any], Settings]:
    """The session's settings, but with another Redis server (for tests that stop it)."""

    def make(redis: Any) -> Settings:
        return auth_settings.model_copy(
            update={
                "redis_host": redis.host,
                "redis_port": redis.port,
                "redis_password": SecretStr(redis.password),
            }
        )

    return make


@pytest.fixture(scope="session")
async def auth_app(auth_settings: Settings) -> AsyncIterator[FastAPI]:
    """The app over the migrated database, its lifespan running for the whole session."""
    app = create_app(auth_settings)
    async with app_client(app):
        yield app


@pytest.fixture
async def client(auth_app: FastAPI) -> AsyncIterator[AsyncClient]:
    """An HTTP client calling the app in-process from an address of its own (so the per-address
    failed-login counters of one test never reach another's)."""
    raw = uuid.uuid4().bytes
    transport = ASGITransport(app=auth_app, client=(f"10.{raw[0]}.{raw[1]}.{raw[2] or 1}", 40000))
    async with AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def client_from(auth_app: FastAPI) -> Callable[[str], AsyncClient]:
    """A client whose requests come from another IP address (close it with ``async with``)."""

    def make(ip: str) -> AsyncClient:
        return AsyncClient(
            transport=ASGITransport(app=auth_app, client=(ip, 40000)), base_url="http://testserver"
        )

    return make


@pytest.fixture
def email() -> str:
    """A fresh address per test, so tests never share an account or a limiter key."""
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


@pytest.fixture
def register(client: AsyncClient) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Register an account (asserting 201) and return its JSON."""

    async def run(email: str, password: str = PASSWORD) -> dict[str, Any]:
        response = await client.post("/api/auth/register", json={"email": email, "password": password})
        assert response.status_code == 201, response.text
        return response.json()

    return run


@pytest.fixture
def login(
    client: AsyncClient, register: Callable[..., Awaitable[dict[str, Any]]]
) -> Callable[..., Awaitable[dict]]:
    """Register *email* and log in (asserting 200); returns the token pair."""

    async def run(email: str) -> dict[str, Any]:
        await register(email)
        response = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        return response.json()

    return run
