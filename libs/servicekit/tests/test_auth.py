"""Token signing and verification: every forged or misused token is refused; argon2 hashing.

Attack (issue 11, item 6): one symmetric key in every service let any compromised service mint
tokens for any user. Now only the issuer holds a private key; a service holding the public keys
cannot sign, nor forge through algorithm confusion with what it holds.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
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
from servicekit.keys import InvalidKey, jwks, load_key_set, load_signing_key
from servicekit.testing import TEST_PUBLIC_KEYS, TEST_SIGNING_KEY

from .conftest import make_settings

ISSUER = {"jwt_issuer": "https://market.example.com/api/auth", "jwt_audience": "marketplace"}
#: A verifying service: public keys only, as every service but auth-svc is configured.
SETTINGS = make_settings(**ISSUER)
#: The issuer (auth-svc): the same, plus the signing key.
ISSUER_SETTINGS = make_settings("auth-svc", jwt_signing_key=TEST_SIGNING_KEY, **ISSUER)
OTHER_KEY = "another-signing-key-" + "x" * 32


def _token(**kwargs: object) -> str:
    return issue_access_token(ISSUER_SETTINGS, "user-1", session_id="sid-1", **kwargs)  # type: ignore[arg-type]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_valid_access_token_round_trips() -> None:
    claims = decode_token(SETTINGS, _token(roles=["seller"]), "access")
    assert (claims.subject, claims.roles, claims.token_type) == ("user-1", ("seller",), "access")
    assert claims.session_id == "sid-1"
    assert jwt.get_unverified_header(_token()) == {
        "alg": "EdDSA",
        "kid": load_signing_key(TEST_SIGNING_KEY).kid,
        "typ": "JWT",
    }


def test_a_service_with_only_the_public_keys_cannot_sign() -> None:
    with pytest.raises(RuntimeError, match="JWT_SIGNING_KEY"):
        issue_access_token(SETTINGS, "admin", session_id="s")


def test_algorithm_confusion_with_the_public_key_is_rejected() -> None:
    """The classic forgery: HS256 with the published public key (or the key set) as the HMAC secret."""
    jwk = load_key_set(TEST_PUBLIC_KEYS).document["keys"][0]
    public_raw = base64.urlsafe_b64decode(jwk["x"] + "=")
    now = datetime.now(UTC)
    claims = {
        "sub": "admin", "iss": SETTINGS.jwt_issuer, "aud": SETTINGS.jwt_audience, "typ": "access",
        "jti": "j", "sid": "s", "iat": now, "nbf": now, "exp": now + timedelta(minutes=5),
    }  # fmt: skip
    header = _b64(json.dumps({"alg": "HS256", "kid": jwk["kid"], "typ": "JWT"}).encode())
    body = _b64(
        json.dumps({**claims, **{k: int(claims[k].timestamp()) for k in ("iat", "nbf", "exp")}}).encode()
    )
    for secret in (public_raw, jwk["x"].encode(), TEST_PUBLIC_KEYS.encode(), json.dumps(jwk).encode()):
        signature = _b64(hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest())
        token = f"{header}.{body}.{signature}"  # built by hand: PyJWT itself refuses such a key
        with pytest.raises(Unauthorized) as exc:
            decode_token(SETTINGS, token)
        assert exc.value.code == "invalid_token"


def test_tampered_payload_is_rejected() -> None:
    header, payload, signature = _token().split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=="))
    data["sub"] = "admin"
    with pytest.raises(Unauthorized) as exc:
        decode_token(SETTINGS, f"{header}.{_b64(json.dumps(data).encode())}.{signature}")
    assert exc.value.code == "invalid_token"


def test_a_key_that_is_not_published_is_rejected() -> None:
    token = issue_access_token(SETTINGS, "user-1", session_id="s", key=load_signing_key(OTHER_KEY))
    with pytest.raises(Unauthorized):
        decode_token(SETTINGS, token)
    _, payload, signature = token.split(".")  # the same, claiming the published key's kid
    header = _b64(json.dumps({"alg": "EdDSA", "kid": load_signing_key(TEST_SIGNING_KEY).kid}).encode())
    with pytest.raises(Unauthorized):
        decode_token(SETTINGS, f"{header}.{payload}.{signature}")


def test_rotation_publishes_two_keys_and_both_verify_until_the_old_one_is_dropped() -> None:
    old, new = load_signing_key(TEST_SIGNING_KEY), load_signing_key(OTHER_KEY)
    during = make_settings(jwt_public_keys=json.dumps(jwks(new, old)), **ISSUER)
    signer = make_settings(
        "auth-svc", jwt_signing_key=OTHER_KEY, jwt_public_keys=json.dumps(jwks(new, old)), **ISSUER
    )
    old_token, new_token = _token(), issue_access_token(signer, "user-2", session_id="s2")
    assert decode_token(during, old_token).subject == "user-1"
    assert decode_token(during, new_token).subject == "user-2"
    after = make_settings(jwt_public_keys=json.dumps(jwks(new)), **ISSUER)
    assert decode_token(after, new_token).subject == "user-2"
    with pytest.raises(Unauthorized):
        decode_token(after, old_token)


def test_the_issuer_refuses_a_signing_key_nobody_can_verify() -> None:
    with pytest.raises(ValueError, match="does not publish the signing key"):
        make_settings("auth-svc", jwt_signing_key=OTHER_KEY, **ISSUER)  # published: the test key only


@pytest.mark.parametrize(
    "value", ["change-me-jwt-signing-key", "too-short", "-----BEGIN PRIVATE KEY-----\nx"]
)
def test_unusable_signing_keys_are_refused(value: str) -> None:
    with pytest.raises(InvalidKey):
        load_signing_key(value)


def test_expired_token_is_rejected() -> None:
    token = _token(now=datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(Unauthorized) as exc:
        decode_token(SETTINGS, token)
    assert exc.value.code == "token_expired"


def test_wrong_audience_is_rejected() -> None:
    other = make_settings("auth-svc", jwt_signing_key=TEST_SIGNING_KEY, jwt_audience="other-app")
    with pytest.raises(Unauthorized):
        decode_token(SETTINGS, issue_access_token(other, "u", session_id="s"))


def test_wrong_issuer_is_rejected() -> None:
    other = make_settings("auth-svc", jwt_signing_key=TEST_SIGNING_KEY, jwt_issuer="https://evil.example.com")
    with pytest.raises(Unauthorized):
        decode_token(SETTINGS, issue_access_token(other, "u", session_id="s"))


def test_refresh_token_is_not_an_access_token() -> None:
    refresh = issue_refresh_token(ISSUER_SETTINGS, "u", "sid-1")
    with pytest.raises(Unauthorized):
        decode_token(SETTINGS, refresh, "access")
    assert decode_token(SETTINGS, refresh, "refresh").session_id == "sid-1"


@pytest.mark.parametrize("missing", ["jti", "sid"])
def test_token_missing_a_required_claim_is_rejected(missing: str) -> None:
    key = load_signing_key(TEST_SIGNING_KEY)
    now = datetime.now(UTC)
    claims = {"sub": "u", "iss": SETTINGS.jwt_issuer, "aud": SETTINGS.jwt_audience, "typ": "access"}
    claims |= {"iat": now, "nbf": now, "exp": now + timedelta(minutes=5), "jti": "j", "sid": "s"}
    del claims[missing]
    token = jwt.encode(claims, key.private, algorithm="EdDSA", headers={"kid": key.kid})
    with pytest.raises(Unauthorized):
        decode_token(SETTINGS, token)


def test_unsigned_token_is_rejected() -> None:
    now = datetime.now(UTC)
    claims = {
        "sub": "admin", "iss": SETTINGS.jwt_issuer, "aud": SETTINGS.jwt_audience, "typ": "access",
        "jti": "j", "sid": "s", "iat": now, "nbf": now, "exp": now + timedelta(minutes=5),
    }  # fmt: skip
    token = jwt.encode(
        claims, None, algorithm="none", headers={"kid": load_signing_key(TEST_SIGNING_KEY).kid}
    )
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
