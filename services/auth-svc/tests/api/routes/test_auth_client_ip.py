"""The login limiter's client address, as the image's uvicorn computes it (``--proxy-headers``).

The app runs behind uvicorn's ProxyHeadersMiddleware with the Dockerfile's own ``FORWARDED_ALLOW_IPS``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from auth_svc.core.config import Settings
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

DOCKERFILE = Path(__file__).resolve().parents[3] / "Dockerfile"
PASSWORD = "correct-horse-42-battery"
WRONG = "wrong-password-123"


def forwarded_allow_ips() -> str:
    """The image's ``FORWARDED_ALLOW_IPS`` value."""
    match = re.search(r'FORWARDED_ALLOW_IPS="([^"]*)"', DOCKERFILE.read_text())
    assert match, "the Dockerfile does not set FORWARDED_ALLOW_IPS"
    return match.group(1)


@pytest.fixture
def peer(auth_app: FastAPI) -> Callable[[str], AsyncClient]:
    """A client whose TCP peer address is *ip*, through the image's proxy-header handling."""
    app = ProxyHeadersMiddleware(auth_app, trusted_hosts=forwarded_allow_ips())

    def make(ip: str) -> AsyncClient:
        transport = ASGITransport(app=app, client=(ip, 40000))  # type: ignore[arg-type]
        return AsyncClient(transport=transport, base_url="http://testserver")

    return make


async def _login(client: AsyncClient, email: str, password: str, forwarded_for: str) -> int:
    response = await client.post(
        "/api/auth/login",
        json={"email": email, "password": password},
        headers={"X-Forwarded-For": forwarded_for},
    )
    return response.status_code


async def test_spoofed_forwarded_for_from_an_untrusted_peer_does_not_reset_the_limit(
    peer: Callable[[str], AsyncClient], register, email: str, auth_settings: Settings
) -> None:
    await register(email)
    async with peer("203.0.113.9") as attacker:
        for i in range(auth_settings.login_max_failures):
            assert await _login(attacker, email, WRONG, f"198.51.100.{i}") == 401
        assert await _login(attacker, email, PASSWORD, "198.51.100.99") == 429


async def test_gateway_forwarded_client_address_is_the_one_limited(
    peer: Callable[[str], AsyncClient], register, email: str, auth_settings: Settings
) -> None:
    await register(email)
    async with peer("10.244.1.7") as gateway:  # a pod address: the gateway
        for _ in range(auth_settings.login_max_failures):
            assert await _login(gateway, email, WRONG, "198.51.100.1") == 401
        assert await _login(gateway, email, PASSWORD, "198.51.100.1") == 429
        assert await _login(gateway, email, PASSWORD, "198.51.100.2") == 200
