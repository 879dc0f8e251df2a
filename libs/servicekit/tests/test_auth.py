"""JWT verification rejects every forged or misused token; argon2 hashing."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from argon2 import PasswordHasher
from servicekit.auth import (
    decode_token,
    hash_password,
    issue_access_token,
    issue_refresh_token,
    needs_rehash,
    verify_password,
)
from servicekit.errors import Unauthorized

from .conftest import make_settings

SETTINGS = make_settings(jwt_issuer="https://market.example.com/api/auth", jwt_audience="marketplace")


def test_valid_access_token_round_trips() -> None:
    token = issue_access_token(SETTINGS, "user-1", roles=["seller"])
    claims = decode_token(SETTINGS, token, "access")
    assert claims.subject == "user-1"
    assert claims.roles == ("seller",)
    assert claims.token_type == "access"


def test_tampered_payload_is_rejected() -> None:
    header, payload, signature = issue_access_token(SETTINGS, "user-1").split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=="))
    data["sub"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    with pytest.raises(Unauthorized) as exc:
        decode_token(SETTINGS, f"{header}.{forged}.{signature}")
    assert exc.value.code == "invalid_token"


def test_other_key_is_rejected() -> None:
    token = issue_access_token(make_settings(jwt_secret="another-secret-" + "x" * 32), "user-1")
    with pytest.raises(Unauthorized):
        decode_token(SETTINGS, token)


def test_expired_token_is_rejected() -> None:
    token = issue_access_token(SETTINGS, "u", now=datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(Unauthorized) as exc:
        decode_token(SETTINGS, token)
    assert exc.value.code == "token_expired"


def test_wrong_audience_is_rejected() -> None:
    token = issue_access_token(make_settings(jwt_audience="other-app"), "u")
    with pytest.raises(Unauthorized):
        decode_token(SETTINGS, token)


def test_wrong_issuer_is_rejected() -> None:
    token = issue_access_token(make_settings(jwt_issuer="https://evil.example.com"), "u")
    with pytest.raises(Unauthorized):
        decode_token(SETTINGS, token)


def test_refresh_token_is_not_an_access_token() -> None:
    refresh = issue_refresh_token(SETTINGS, "u", "sid-1")
    with pytest.raises(Unauthorized):
        decode_token(SETTINGS, refresh, "access")
    assert decode_token(SETTINGS, refresh, "refresh").session_id == "sid-1"


def test_token_missing_a_required_claim_is_rejected() -> None:
    now = datetime.now(UTC)
    claims = {"sub": "u", "iss": SETTINGS.jwt_issuer, "aud": SETTINGS.jwt_audience, "typ": "access"}
    claims |= {"iat": now, "nbf": now, "exp": now + timedelta(minutes=5)}  # no jti
    token = jwt.encode(claims, SETTINGS.jwt_secret.get_secret_value(), algorithm="HS256")
    with pytest.raises(Unauthorized):
        decode_token(SETTINGS, token)


def test_unsigned_token_is_rejected() -> None:
    good = decode_token(SETTINGS, issue_access_token(SETTINGS, "u"))
    now = datetime.now(UTC)
    claims = {
        "sub": "admin", "iss": SETTINGS.jwt_issuer, "aud": SETTINGS.jwt_audience, "typ": "access",
        "jti": good.token_id, "iat": now, "nbf": now, "exp": now + timedelta(minutes=5),
    }  # fmt: skip
    token = jwt.encode(claims, None, algorithm="none")
    with pytest.raises(Unauthorized):
        decode_token(SETTINGS, token)


def test_argon2id_hash_format_and_verification() -> None:
    hashed = hash_password("correct horse battery staple")
    assert hashed.startswith("$argon2id$v=19$m=")
    assert hashed != hash_password("correct horse battery staple")  # salted
    assert verify_password(hashed, "correct horse battery staple")
    assert not verify_password(hashed, "wrong")
    assert not verify_password("not-a-hash", "anything")
    assert not needs_rehash(hashed)


def test_weaker_hash_needs_rehash() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("pw")
    assert verify_password(weak, "pw")
    assert needs_rehash(weak)
