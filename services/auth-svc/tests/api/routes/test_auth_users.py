"""``POST /api/auth/register`` and ``GET /api/auth/me``."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import asyncpg
from auth_svc.core.config import Settings
from httpx import AsyncClient
from servicekit.auth import issue_access_token
from servicekit.keys import load_signing_key
from servicekit.testing import TEST_SIGNING_KEY, Database

Register = Callable[..., Awaitable[dict[str, Any]]]
Login = Callable[[str], Awaitable[dict[str, Any]]]


async def _row(db: Database, sql: str, *args: Any) -> asyncpg.Record | None:
    conn = await asyncpg.connect(db.url)
    try:
        return await conn.fetchrow(sql, *args)
    finally:
        await conn.close()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_register_creates_account(client: AsyncClient, email: str) -> None:
    response = await client.post(
        "/api/auth/register", json={"email": email, "password": "long-enough-pass-1"}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["email"] == email
    assert uuid.UUID(body["id"])
    assert "password" not in json.dumps(body)


async def test_register_stores_only_an_argon2id_hash(
    register: Register, email: str, auth_db: Database
) -> None:
    password = "my-secret-password-9"
    await register(email, password)
    row = await _row(auth_db, "SELECT password_hash FROM users WHERE email = $1", email)
    assert row is not None
    assert row["password_hash"].startswith("$argon2id$")
    assert password not in row["password_hash"]


async def test_register_lowercases_email(client: AsyncClient, email: str) -> None:
    response = await client.post(
        "/api/auth/register", json={"email": email.upper(), "password": "long-enough-pass-1"}
    )
    assert response.json()["email"] == email


async def test_register_duplicate_email_is_409(client: AsyncClient, register: Register, email: str) -> None:
    await register(email)
    response = await client.post(
        "/api/auth/register", json={"email": email.upper(), "password": "other-password-22"}
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "email_taken"


async def test_register_rejects_short_password(client: AsyncClient, email: str) -> None:
    response = await client.post("/api/auth/register", json={"email": email, "password": "short-1"})
    assert response.status_code == 422


async def test_register_rejects_password_without_digit(client: AsyncClient, email: str) -> None:
    response = await client.post("/api/auth/register", json={"email": email, "password": "only-letters-here"})
    assert response.status_code == 422


async def test_register_rejects_password_without_letter(client: AsyncClient, email: str) -> None:
    response = await client.post("/api/auth/register", json={"email": email, "password": "1234567890123"})
    assert response.status_code == 422


async def test_register_rejects_invalid_email(client: AsyncClient) -> None:
    response = await client.post(
        "/api/auth/register", json={"email": "not-an-email", "password": "long-enough-pass-1"}
    )
    assert response.status_code == 422


async def test_register_queues_user_registered_in_the_outbox(
    register: Register, email: str, auth_db: Database
) -> None:
    user = await register(email)
    row = await _row(
        auth_db,
        "SELECT event_type, envelope FROM outbox WHERE envelope->'payload'->>'user_id' = $1",
        user["id"],
    )
    assert row is not None
    assert row["event_type"] == "user.registered"
    assert json.loads(row["envelope"])["payload"]["email"] == email


async def test_user_registered_is_published_to_the_broker(
    register: Register, email: str, auth_settings: Settings, rabbitmq_server: Any
) -> None:
    connection = await aio_pika.connect(rabbitmq_server.url(auth_settings.rabbitmq_vhost))
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind("events", routing_key="user.registered")
        user = await register(email)
        async with asyncio.timeout(10):
            async with queue.iterator() as messages:
                async for message in messages:
                    async with message.process():
                        envelope = json.loads(message.body)
                    if envelope["payload"]["user_id"] == user["id"]:
                        break
    assert envelope["type"] == "user.registered"
    assert envelope["producer"] == "auth-svc"


async def test_me_returns_the_caller(client: AsyncClient, login: Login, email: str) -> None:
    tokens = await login(email)
    response = await client.get("/api/auth/me", headers=_bearer(tokens["access_token"]))
    assert response.status_code == 200
    assert response.json()["email"] == email


async def test_me_without_token_is_401(client: AsyncClient) -> None:
    response = await client.get("/api/auth/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_me_rejects_a_tampered_token(client: AsyncClient, login: Login, email: str) -> None:
    token = (await login(email))["access_token"]
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = str(uuid.uuid4())
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    response = await client.get("/api/auth/me", headers=_bearer(f"{header}.{forged}.{signature}"))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"


async def test_me_rejects_an_expired_token(
    client: AsyncClient, register: Register, email: str, auth_settings: Settings
) -> None:
    user = await register(email)
    issued = datetime.now(UTC) - timedelta(hours=1)
    token = issue_access_token(
        auth_settings, user["id"], session_id="s1", ttl=timedelta(minutes=15), now=issued
    )
    response = await client.get("/api/auth/me", headers=_bearer(token))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_expired"


async def test_me_rejects_a_token_for_another_audience(
    client: AsyncClient, register: Register, email: str, auth_settings: Settings
) -> None:
    user = await register(email)
    other = auth_settings.model_copy(update={"jwt_audience": "another-platform"})
    token = issue_access_token(other, user["id"], session_id="s1")
    response = await client.get("/api/auth/me", headers=_bearer(token))
    assert response.status_code == 401


async def test_me_rejects_a_token_signed_with_another_key(
    client: AsyncClient, register: Register, email: str, auth_settings: Settings
) -> None:
    user = await register(email)
    forger = load_signing_key("an attacker's own signing key, long enough")
    for kid in (forger.kid, load_signing_key(TEST_SIGNING_KEY).kid):  # its own kid, or the real one
        token = issue_access_token(auth_settings, user["id"], session_id="s1", key=forger)
        _, payload, signature = token.split(".")
        forged = base64.urlsafe_b64encode(json.dumps({"alg": "EdDSA", "kid": kid, "typ": "JWT"}).encode())
        token = ".".join([forged.decode().rstrip("="), payload, signature])
        response = await client.get("/api/auth/me", headers=_bearer(token))
        assert (response.status_code, response.json()["error"]["code"]) == (401, "invalid_token")


async def test_me_rejects_a_refresh_token(client: AsyncClient, login: Login, email: str) -> None:
    tokens = await login(email)
    response = await client.get("/api/auth/me", headers=_bearer(tokens["refresh_token"]))
    assert response.status_code == 401


async def test_me_for_a_deleted_account_is_404(
    client: AsyncClient, login: Login, email: str, auth_db: Database
) -> None:
    tokens = await login(email)
    await _row(auth_db, "DELETE FROM users WHERE email = $1 RETURNING id", email)
    response = await client.get("/api/auth/me", headers=_bearer(tokens["access_token"]))
    assert response.status_code == 404
