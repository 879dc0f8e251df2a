"""Attacks on the running dev platform through the TLS gateway (issue 11, items 6 and 7)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from servicekit.keys import InvalidKey, load_signing_key

from .conftest import Platform, create_listing, new_account, poll

LISTING = {"title": "Lamp", "description": "", "price_minor": 2500, "currency": "EUR"}


@pytest.fixture(scope="module")
def client(platform: Platform) -> Any:
    with platform.client() as c:
        yield c


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forgeries(secret: str, claims: dict[str, Any]) -> list[str]:
    """Tokens for *claims* signed with *secret* every way a service could try: HS256 with it as the
    key, and EdDSA with a key derived from it (or the PEM key it is)."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    signature = _b64(hmac.new(secret.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest())
    tokens = [f"{header}.{body}.{signature}"]
    try:
        key = load_signing_key(secret)
    except InvalidKey:
        return tokens
    return [*tokens, jwt.encode(claims, key.private, algorithm="EdDSA", headers={"kid": key.kid})]


def test_a_compromised_service_cannot_mint_tokens(platform: Platform, client: httpx.Client) -> None:
    """Everything marketplace-svc holds (its credential files) is tried as a token-signing key."""
    victim = new_account(platform, client, "victim")
    issuer = platform.spec.token_issuer
    assert issuer is not None
    me = platform.url("/api/auth/me")
    assert client.get(me, headers={"Authorization": f"Bearer {victim['token']}"}).status_code == 200
    now = int(time.time())
    claims = {
        "sub": victim["id"], "iss": f"https://localhost:{platform.ports['gateway_https']}/api/auth",
        "aud": "marketplace", "typ": "access", "jti": uuid.uuid4().hex, "sid": uuid.uuid4().hex,
        "iat": now, "nbf": now, "exp": now + 300,
    }  # fmt: skip
    for service in platform.spec.services:
        if service.name == issuer.name:
            continue
        files = sorted((platform.state_dir / "secrets" / service.name).iterdir())
        assert files, service.name
        for file in files:
            for token in _forgeries(file.read_text(), claims):
                answer = client.get(me, headers={"Authorization": f"Bearer {token}"})
                assert answer.status_code == 401, (
                    f"{service.name}'s {file.name} signed a token auth-svc accepted"
                )


def test_the_jwks_endpoint_publishes_the_key_tokens_are_signed_with(
    platform: Platform, client: httpx.Client
) -> None:
    user = new_account(platform, client, "jwks")
    answer = client.get(platform.url("/api/auth/.well-known/jwks.json"))
    assert answer.status_code == 200
    keys = jwt.PyJWKSet.from_dict(answer.json())
    kid = jwt.get_unverified_header(user["token"])["kid"]
    (key,) = [k for k in keys.keys if k.key_id == kid]
    claims = jwt.decode(user["token"], key.key, algorithms=["EdDSA"], audience="marketplace")
    assert (claims["sub"], claims["typ"]) == (user["id"], "access")
    assert claims["sid"]  # every access token names its session


def test_a_logout_reaches_the_other_services(platform: Platform, client: httpx.Client) -> None:
    email = f"leaver-{uuid.uuid4().hex[:8]}@example.com"
    password = "correct horse battery staple 42"
    assert client.post(
        platform.url("/api/auth/register"), json={"email": email, "password": password}
    ).is_success
    tokens = client.post(platform.url("/api/auth/login"), json={"email": email, "password": password}).json()
    create_listing(platform, client, tokens["access_token"])  # works while the session lives
    logout = client.post(platform.url("/api/auth/logout"), json={"refresh_token": tokens["refresh_token"]})
    assert logout.status_code == 204

    def refused() -> bool:
        answer = client.post(
            platform.url("/api/marketplace/listings"),
            json=LISTING,
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        )
        return answer.status_code == 401 and answer.json()["error"]["code"] == "session_revoked"

    poll(refused, timeout=30, what="marketplace-svc refusing the logged-out session's token")
