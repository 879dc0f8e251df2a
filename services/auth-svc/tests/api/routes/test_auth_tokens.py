"""``POST /api/auth/login``, ``/refresh`` and ``/logout``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import jwt
from auth_svc.core.config import Settings
from httpx import AsyncClient
from servicekit.auth import decode_token

Register = Callable[..., Awaitable[dict[str, Any]]]
Login = Callable[[str], Awaitable[dict[str, Any]]]
PASSWORD = "correct-horse-42-battery"


async def _login(client: AsyncClient, email: str, password: str = PASSWORD) -> Any:
    return await client.post("/api/auth/login", json={"email": email, "password": password})


async def _refresh(client: AsyncClient, token: str) -> Any:
    return await client.post("/api/auth/refresh", json={"refresh_token": token})


async def test_login_returns_an_access_and_a_refresh_token(
    client: AsyncClient, register: Register, email: str, auth_settings: Settings
) -> None:
    user = await register(email)
    response = await _login(client, email)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == auth_settings.access_token_ttl_seconds
    assert decode_token(auth_settings, body["access_token"], "access").subject == user["id"]
    assert decode_token(auth_settings, body["refresh_token"], "refresh").session_id


async def test_login_with_a_wrong_password_is_401(
    client: AsyncClient, register: Register, email: str
) -> None:
    await register(email)
    response = await _login(client, email, "wrong-password-123")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_credentials"


async def test_login_with_an_unknown_email_is_401(client: AsyncClient, email: str) -> None:
    response = await _login(client, email)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_credentials"


async def test_login_is_429_after_too_many_failures_even_with_the_right_password(
    client: AsyncClient, register: Register, email: str, auth_settings: Settings
) -> None:
    await register(email)
    statuses = [
        (await _login(client, email, "wrong-password-123")).status_code
        for _ in range(auth_settings.login_max_failures)
    ]
    assert statuses == [401] * auth_settings.login_max_failures
    response = await _login(client, email)
    assert response.status_code == 429
    assert 0 < int(response.headers["retry-after"]) <= 60


async def test_failed_login_limit_is_per_client_ip(
    client: AsyncClient,
    client_from: Callable[[str], AsyncClient],
    register: Register,
    email: str,
    auth_settings: Settings,
) -> None:
    await register(email)
    for _ in range(auth_settings.login_max_failures):
        await _login(client, email, "wrong-password-123")
    async with client_from("10.9.8.7") as other:
        response = await _login(other, email)
    assert response.status_code == 200


async def test_failed_login_limit_is_per_email(
    client: AsyncClient, register: Register, email: str, auth_settings: Settings
) -> None:
    other = f"other-{email}"
    await register(other)
    for _ in range(auth_settings.login_max_failures):
        await _login(client, email, "wrong-password-123")
    assert (await _login(client, other)).status_code == 200


async def test_successful_login_clears_the_failures(
    client: AsyncClient, register: Register, email: str, auth_settings: Settings
) -> None:
    await register(email)
    for _ in range(auth_settings.login_max_failures - 1):
        await _login(client, email, "wrong-password-123")
    assert (await _login(client, email)).status_code == 200
    assert (await _login(client, email, "wrong-password-123")).status_code == 401
    assert (await _login(client, email)).status_code == 200


async def test_refresh_issues_a_new_pair(
    client: AsyncClient, login: Login, email: str, auth_settings: Settings
) -> None:
    tokens = await login(email)
    response = await _refresh(client, tokens["refresh_token"])
    assert response.status_code == 200
    fresh = response.json()
    assert fresh["refresh_token"] != tokens["refresh_token"]
    old = decode_token(auth_settings, tokens["refresh_token"], "refresh")
    new = decode_token(auth_settings, fresh["refresh_token"], "refresh")
    assert new.session_id == old.session_id  # the same session, a new refresh token
    assert new.token_id != old.token_id
    assert decode_token(auth_settings, fresh["access_token"], "access").session_id == old.session_id
    assert (
        await client.get("/api/auth/me", headers={"Authorization": f"Bearer {fresh['access_token']}"})
    ).status_code == 200


async def test_refresh_revokes_the_presented_token(client: AsyncClient, login: Login, email: str) -> None:
    tokens = await login(email)
    assert (await _refresh(client, tokens["refresh_token"])).status_code == 200
    response = await _refresh(client, tokens["refresh_token"])
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "refresh_token_reused"


async def test_reusing_a_rotated_refresh_token_revokes_the_family(
    client: AsyncClient, login: Login, email: str
) -> None:
    tokens = await login(email)
    second = (await _refresh(client, tokens["refresh_token"])).json()
    third = (await _refresh(client, second["refresh_token"])).json()
    assert (await _refresh(client, tokens["refresh_token"])).status_code == 401  # replay of a stolen token
    assert (await _refresh(client, third["refresh_token"])).status_code == 401


async def test_refresh_with_an_access_token_is_401(client: AsyncClient, login: Login, email: str) -> None:
    tokens = await login(email)
    assert (await _refresh(client, tokens["access_token"])).status_code == 401


async def test_refresh_with_a_tampered_token_is_401(
    client: AsyncClient, login: Login, email: str, auth_settings: Settings
) -> None:
    tokens = await login(email)
    claims = jwt.decode(tokens["refresh_token"], options={"verify_signature": False})
    claims["sub"] = "00000000-0000-0000-0000-000000000000"
    forged = jwt.encode(claims, "not-the-signing-key-but-long-enough-0000", algorithm="HS256")
    response = await _refresh(client, forged)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"


async def test_logout_revokes_the_refresh_token(client: AsyncClient, login: Login, email: str) -> None:
    tokens = await login(email)
    response = await client.post("/api/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    assert response.status_code == 204
    assert (await _refresh(client, tokens["refresh_token"])).status_code == 401


async def test_logout_with_an_invalid_token_is_401(client: AsyncClient) -> None:
    response = await client.post("/api/auth/logout", json={"refresh_token": "not.a.token"})
    assert response.status_code == 401


async def test_token_answers_are_never_stored_by_a_cache(
    client: AsyncClient, register: Register, email: str
) -> None:
    """Issue 11, item 13: a shared or browser cache must not keep a token pair."""
    await register(email)
    login = await _login(client, email)
    refreshed = await _refresh(client, login.json()["refresh_token"])
    for response in (login, refreshed):
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["pragma"] == "no-cache"
