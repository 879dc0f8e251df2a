"""The four services running for real, shared by the contract tests of this folder."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from servicekit.testing import delete_vhost, import_platform_vhost

from tests.integration.conftest import BrokerAccess, Served, deployed, serving, stack_spec

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


@pytest.fixture(scope="module")
async def access_token(services: dict[str, Served]) -> str:
    """A registered, logged-in user's access token (from auth-svc itself)."""
    auth = services["auth-svc"].url
    body = {"email": f"contract-{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD}
    async with httpx.AsyncClient(base_url=auth, timeout=30) as client:
        assert (await client.post("/api/auth/register", json=body)).status_code == 201
        login = await client.post("/api/auth/login", json=body)
    assert login.status_code == 200, login.text
    return str(login.json()["access_token"])
