"""Attack (issue 11, item 7): revocation must reach live access.

A stolen access token stayed valid for its whole lifetime after the user logged out, or after the
thief's replayed refresh token was detected: only auth-svc knew. Now auth-svc announces the
revoked sessions and every service - including a replica that starts afterwards - refuses their
tokens. auth-svc, marketplace-svc and chat-svc run in-process on the platform's real definitions
(the ``sessions.revoked`` stream) on the session's RabbitMQ.
"""

from __future__ import annotations

import uuid
from typing import Any

from .conftest import BrokerAccess, Running, running, wait_until

PASSWORD = "correct horse battery 42"
LISTING = {"title": "Lamp", "description": "", "price_minor": 2500, "currency": "EUR"}
#: Seconds a revocation may take to reach another service (outbox relay -> broker -> stream).
PROPAGATION_S = 15


async def login(auth: Running, email: str) -> dict[str, str]:
    """The token pair of a fresh login."""
    response = await auth.client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response.json()


async def new_user(auth: Running) -> str:
    email = f"victim-{uuid.uuid4().hex[:8]}@example.com"
    registered = await auth.client.post("/api/auth/register", json={"email": email, "password": PASSWORD})
    assert registered.status_code == 201, registered.text
    return email


async def create_listing(market: Running, access_token: str) -> Any:
    return await market.client.post(
        "/api/marketplace/listings", json=LISTING, headers={"Authorization": f"Bearer {access_token}"}
    )


async def refused_by(service: Running, path: str, access_token: str) -> bool:
    """True once *service* answers 401 ``session_revoked`` to the token on GET *path*."""
    response = await service.client.get(path, headers={"Authorization": f"Bearer {access_token}"})
    return response.status_code == 401 and response.json()["error"]["code"] == "session_revoked"


async def test_a_logout_reaches_every_service_and_replicas_started_later(
    postgres_server: Any, redis_server: Any, isolated_broker: BrokerAccess
) -> None:
    where = {"postgres": postgres_server, "redis": redis_server, "broker": isolated_broker}
    async with (
        running("auth-svc", **where) as auth,
        running("marketplace-svc", **where) as market,
        running("chat-svc", **where) as chat,
    ):
        email = await new_user(auth)
        stolen = await login(auth, email)  # the thief's copy of the tokens
        other_session = await login(auth, email)  # the same user on another device
        assert (await create_listing(market, stolen["access_token"])).status_code == 201

        logout = await auth.client.post("/api/auth/logout", json={"refresh_token": stolen["refresh_token"]})
        assert logout.status_code == 204

        token = stolen["access_token"]
        assert await refused_by(auth, "/api/auth/me", token)
        await wait_until(
            lambda: refused_by(chat, "/api/chat/conversations", token), PROPAGATION_S, "chat-svc"
        )
        await wait_until(lambda: _market_refuses(market, token), PROPAGATION_S, "marketplace-svc")
        # Only that session: the user's other session keeps working.
        assert (await create_listing(market, other_session["access_token"])).status_code == 201

        async with running("marketplace-svc", **where) as late:  # a replica started after the logout
            assert await _market_refuses(late, token)
            assert (await create_listing(late, other_session["access_token"])).status_code == 201


async def _market_refuses(market: Running, access_token: str) -> bool:
    response = await create_listing(market, access_token)
    return response.status_code == 401 and response.json()["error"]["code"] == "session_revoked"


async def test_a_replayed_refresh_token_revokes_every_session_everywhere(
    postgres_server: Any, redis_server: Any, isolated_broker: BrokerAccess
) -> None:
    where = {"postgres": postgres_server, "redis": redis_server, "broker": isolated_broker}
    async with running("auth-svc", **where) as auth, running("marketplace-svc", **where) as market:
        email = await new_user(auth)
        first, second = await login(auth, email), await login(auth, email)
        rotated = await auth.client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert rotated.status_code == 200
        replay = await auth.client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert (replay.status_code, replay.json()["error"]["code"]) == (401, "refresh_token_reused")

        for token in (first["access_token"], rotated.json()["access_token"], second["access_token"]):
            await wait_until(lambda token=token: _market_refuses(market, token), PROPAGATION_S, "revocation")
