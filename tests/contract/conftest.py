"""The four services running for real, shared by the contract tests of this folder, with a user
to call them as and a listing (another user's) that every service knows."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from servicekit.testing import delete_vhost, import_platform_vhost

from tests.integration.conftest import BrokerAccess, Served, deployed, serving, stack_spec, wait_until

SERVICES = ("auth-svc", "marketplace-svc", "payment-svc", "chat-svc")
PASSWORD = "contract test password 42"


@pytest.fixture(scope="module")
async def services(
    postgres_server: Any, redis_server: Any, rabbitmq_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, Served]]:
    """The four services on one vhost of the session broker, each its own uvicorn process."""
    spec = stack_spec()
    isolated = await import_platform_vhost(rabbitmq_server, spec, prefix="ct")
    broker = BrokerAccess(
        rabbitmq_server, isolated.vhost, isolated.users, list(spec.config.rabbitmq.retry_delays_ms)
    )
    where = {"postgres": postgres_server, "redis": redis_server, "broker": broker}
    try:
        async with AsyncExitStack() as stack:
            deps = [await stack.enter_async_context(deployed(name, **where)) for name in SERVICES]
            base_dir = tmp_path_factory.mktemp("contract")
            served = await stack.enter_async_context(serving(deps, base_dir=base_dir))
            yield {s.name: s for s in served}
    finally:
        users = [creds.user for creds in isolated.users.values()]
        await delete_vhost(rabbitmq_server, isolated.vhost, users)


async def log_in(auth_url: str, who: str) -> str:
    """Register a fresh user through auth-svc and log in: its access token."""
    body = {"email": f"{who}-{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD}
    async with httpx.AsyncClient(base_url=auth_url, timeout=30) as client:
        registered = await client.post("/api/auth/register", json=body)
        assert registered.status_code == 201, registered.text
        login = await client.post("/api/auth/login", json=body)
    assert login.status_code == 200, login.text
    return str(login.json()["access_token"])


@pytest.fixture(scope="module")
async def access_token(services: dict[str, Served]) -> str:
    """The access token the fuzzer calls every service with."""
    return await log_in(services["auth-svc"].url, "contract")


@pytest.fixture(scope="module")
async def seeded_listing(services: dict[str, Served]) -> str:
    """A listing of another user, once payment-svc and chat-svc learned it from ``listing.created``:
    the fuzzer sometimes uses its id, so operations get past 404 (403 not the owner, 409 price, ...)."""
    seller = await log_in(services["auth-svc"].url, "seller")
    async with httpx.AsyncClient(base_url=services["marketplace-svc"].url, timeout=30) as client:
        created = await client.post(
            "/api/marketplace/listings",
            json={"title": "Brass lamp", "price_minor": 2500, "currency": "EUR"},
            headers={"Authorization": f"Bearer {seller}"},
        )
    assert created.status_code == 201, created.text
    listing_id = str(created.json()["id"])

    async def known() -> bool:
        for name in ("payment-svc", "chat-svc"):
            async with services[name].session() as session:
                query = sa.text("SELECT count(*) FROM listings WHERE id = :id")
                if not await session.scalar(query, {"id": uuid.UUID(listing_id)}):
                    return False
        return True

    await wait_until(known, 30, "payment-svc and chat-svc learn the listing")
    return listing_id
