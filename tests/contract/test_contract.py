"""Each service, run for real, answers only what its OpenAPI document describes.

The four services run as uvicorn processes (as `platform dev` runs them) on real PostgreSQL, Redis
and RabbitMQ, provisioned like the integration tests' (``tests/integration/conftest.py``). For each,
schemathesis reads ``/openapi.json`` and fuzzes every documented operation (schema examples,
boundary and invalid values, random data, and chains of calls linked by the responses) with a
logged-in user's access token; a response the document does not describe fails the test: an
undocumented status, content type, header or body, a 5xx, or a 405 whose ``Allow`` disagrees
with the document. Bounded: a few examples per operation, one fixed seed, deterministic generation.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from servicekit.testing import delete_vhost, import_platform_vhost

from tests.integration.conftest import BrokerAccess, Served, deployed, serving, stack_spec

SERVICES = ("auth-svc", "marketplace-svc", "payment-svc", "chat-svc")
#: Every check about the response matching the document (schemathesis' names).
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "unsupported_method",
    "allow_header_conformance",
)
MAX_EXAMPLES = 10
SEED = 20260101
PASSWORD = "contract test password 42"
SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))


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


def schemathesis_argv(url: str, token: str, report_dir: Path) -> list[str]:
    """The schemathesis run against one service's document."""
    return [
        SCHEMATHESIS,
        "run",
        f"{url}/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--generation-deterministic",
        "--workers",
        "1",
        "--header",
        f"Authorization: Bearer {token}",
        "--request-timeout",
        "10",
        "--no-color",
        "--report",
        "junit",
        "--report-dir",
        str(report_dir),
    ]


@pytest.mark.parametrize("name", SERVICES)
async def test_every_response_is_described_by_the_document(
    name: str, services: dict[str, Served], access_token: str, tmp_path: Path
) -> None:
    argv = schemathesis_argv(services[name].url, access_token, tmp_path)
    run = await asyncio.to_thread(
        subprocess.run, argv, capture_output=True, text=True, timeout=240, check=False, cwd=tmp_path
    )
    (tmp_path / "schemathesis.log").write_text(run.stdout + run.stderr)
    assert run.returncode == 0, f"{name}: schemathesis found responses its document does not describe\n" + (
        run.stdout[-12000:] + run.stderr[-3000:]
    )
