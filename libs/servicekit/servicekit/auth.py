"""Access/refresh tokens (JWS EdDSA, Ed25519), the ``CurrentUser`` dependency and argon2 password hashing.

Only the issuer (auth-svc, ``JWT_SIGNING_KEY``) signs; every service verifies with the public keys of
``JWT_PUBLIC_KEYS`` (see :mod:`servicekit.keys`), picked by the token's ``kid``. Every token carries
its session id (``sid``): a revoked session's tokens are refused (:mod:`servicekit.revocation`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any, Literal

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from servicekit.errors import Forbidden, Unauthorized
from servicekit.keys import ALGORITHM, KeySet, SigningKey, load_key_set, load_signing_key
from servicekit.settings import Settings

TokenType = Literal["access", "refresh"]
ACCESS_TTL = timedelta(minutes=15)
REFRESH_TTL = timedelta(days=14)
#: Claims every token must carry; PyJWT rejects a token missing any of them.
REQUIRED_CLAIMS = ["exp", "iat", "nbf", "iss", "aud", "sub", "jti", "typ", "sid"]
#: Tolerated clock skew between services.
LEEWAY = timedelta(seconds=10)
_INVALID = "invalid token"


@dataclass(frozen=True)
class TokenClaims:
    """The verified claims of a token."""

    subject: str
    token_type: TokenType
    token_id: str
    issued_at: datetime
    expires_at: datetime
    roles: tuple[str, ...] = ()
    session_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a request (from a verified access token)."""

    user_id: str
    roles: tuple[str, ...]
    token_id: str
    session_id: str = ""
    expires_at: datetime | None = None

    def has_role(self, role: str) -> bool:
        """True when the caller holds *role*."""
        return role in self.roles


def signing_key(settings: Settings) -> SigningKey:
    """The issuer's key (``JWT_SIGNING_KEY``); only auth-svc has one."""
    if settings.jwt_signing_key is None:
        raise RuntimeError(
            f"{settings.service_name} cannot sign tokens: JWT_SIGNING_KEY is not set\n"
            "hint: only the token issuer (auth-svc) holds a signing key; other services only verify"
        )
    return load_signing_key(settings.jwt_signing_key.get_secret_value())


def public_keys(settings: Settings) -> KeySet:
    """The keys tokens are verified with (``JWT_PUBLIC_KEYS``)."""
    if settings.jwt_public_keys is None:
        raise RuntimeError(
            f"{settings.service_name} cannot verify tokens: JWT_PUBLIC_KEYS is not set\n"
            "hint: give every service the platform's JWK Set (python -m servicekit.keys)"
        )
    return load_key_set(settings.jwt_public_keys)


def issue_token(
    settings: Settings,
    subject: str,
    token_type: TokenType,
    *,
    session_id: str,
    ttl: timedelta | None = None,
    roles: tuple[str, ...] | list[str] = (),
    extra: dict[str, Any] | None = None,
    now: datetime | None = None,
    key: SigningKey | None = None,
    token_id: str | None = None,
) -> str:
    """Sign a token of session *session_id* for *subject* with the issuer's key (or *key*);
    ``ttl`` defaults to 15 min (access) / 14 days (refresh); ``jti`` is *token_id* or a fresh one."""
    signer = key or signing_key(settings)
    issued = now or datetime.now(UTC)
    lifetime = ttl or (ACCESS_TTL if token_type == "access" else REFRESH_TTL)
    claims: dict[str, Any] = {
        **(extra or {}),
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": subject,
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime,
        "jti": token_id or uuid.uuid4().hex,
        "typ": token_type,
        "sid": session_id,
    }
    if roles:
        claims["roles"] = list(roles)
    return jwt.encode(claims, signer.private, algorithm=ALGORITHM, headers={"kid": signer.kid})


def issue_access_token(settings: Settings, subject: str, *, session_id: str, **kwargs: Any) -> str:
    """A short-lived access token of session *session_id*."""
    return issue_token(settings, subject, "access", session_id=session_id, **kwargs)


def issue_refresh_token(settings: Settings, subject: str, session_id: str, **kwargs: Any) -> str:
    """A refresh token bound to a server-side session (see :mod:`servicekit.sessions`)."""
    return issue_token(settings, subject, "refresh", session_id=session_id, **kwargs)


def decode_token(settings: Settings, token: str, expected_type: TokenType = "access") -> TokenClaims:
    """Verify the signature (with the public key of the token's ``kid``), ``exp``/``nbf``, ``aud``,
    ``iss``, the token type and the session id; raise :class:`Unauthorized`."""
    keys = public_keys(settings)
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as exc:
        raise Unauthorized(_INVALID, code="invalid_token") from exc
    key = keys.get(kid if isinstance(kid, str) else None)
    if key is None:
        raise Unauthorized(_INVALID, code="invalid_token")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=LEEWAY,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("token expired", code="token_expired") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized(_INVALID, code="invalid_token") from exc
    if claims.get("typ") != expected_type:
        raise Unauthorized(f"not an {expected_type} token", code="invalid_token")
    roles = claims.get("roles") or []
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise Unauthorized(_INVALID, code="invalid_token")
    if not isinstance(claims["sid"], str) or not claims["sid"]:
        raise Unauthorized(_INVALID, code="invalid_token")
    known = {*REQUIRED_CLAIMS, "roles"}
    return TokenClaims(
        subject=str(claims["sub"]),
        token_type=expected_type,
        token_id=str(claims["jti"]),
        issued_at=datetime.fromtimestamp(claims["iat"], UTC),
        expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        roles=tuple(roles),
        session_id=claims["sid"],
        extra={k: v for k, v in claims.items() if k not in known},
    )


def authenticate(app: Any, token: str) -> Principal:
    """The caller of an access *token* for *app* (a FastAPI app): verified, and its session not
    revoked (a revoked session is 401 ``session_revoked``). HTTP routes get it through
    ``CurrentUser``; WebSocket routes call it with ``ws.app``."""
    claims = decode_token(app.state.settings, token, "access")
    runtime = getattr(app.state, "runtime", None)
    revocations = getattr(runtime, "revocations", None)
    if revocations is not None and revocations.is_revoked(claims.session_id):
        raise Unauthorized("session revoked; log in again", code="session_revoked")
    return Principal(
        user_id=claims.subject,
        roles=claims.roles,
        token_id=claims.token_id,
        session_id=claims.session_id or "",
        expires_at=claims.expires_at,
    )


#: The OpenAPI security scheme of access tokens (named in every service's document).
BEARER_SCHEME_NAME = "bearerAuth"
#: Marks :func:`require_role`'s checks, so the OpenAPI document lists their 403.
ROLE_CHECK_MARK = "__servicekit_role_check__"
#: OpenAPI's "Authorize" button; it never raises itself (we render our own 401).
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name=BEARER_SCHEME_NAME,
    bearerFormat="JWT",
    description="access token from auth-svc (POST /api/auth/login): `Authorization: Bearer <token>`",
)


async def get_current_user(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
) -> Principal:
    """FastAPI dependency: the caller of a request with a valid access token, else 401."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("missing bearer token")
    return authenticate(request.app, credentials.credentials)


async def get_optional_user(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
) -> Principal | None:
    """Like :func:`get_current_user` but ``None`` for anonymous requests (a bad token is still 401)."""
    if credentials is None:
        return None
    return await get_current_user(request, credentials)


CurrentUser = Annotated[Principal, Depends(get_current_user)]
OptionalUser = Annotated[Principal | None, Depends(get_optional_user)]


def require_role(role: str) -> Any:
    """Dependency factory: ``Depends(require_role("admin"))`` -> 403 unless the caller has *role*."""

    async def check(user: CurrentUser) -> Principal:
        if not user.has_role(role):
            raise Forbidden(f"requires role '{role}'")
        return user

    setattr(check, ROLE_CHECK_MARK, True)
    return Depends(check)


# ---------------------------------------------------------------- passwords


#: argon2id parameters from OWASP's Password Storage Cheat Sheet (m=19 MiB, t=2, p=1): the memory one
#: hash holds is what bounds how many a service can run at once (argon2-cffi's default, RFC 9106's
#: low-memory profile, takes 64 MiB per hash).
PASSWORD_HASH_MEMORY_KIB = 19 * 1024
PASSWORD_HASH_TIME_COST = 2
PASSWORD_HASH_PARALLELISM = 1


@lru_cache
def password_hasher() -> PasswordHasher:
    """argon2id with OWASP's parameters (:data:`PASSWORD_HASH_MEMORY_KIB` per hash)."""
    return PasswordHasher(
        time_cost=PASSWORD_HASH_TIME_COST,
        memory_cost=PASSWORD_HASH_MEMORY_KIB,
        parallelism=PASSWORD_HASH_PARALLELISM,
    )


def hash_password(password: str) -> str:
    """An ``$argon2id$...`` hash of *password*."""
    return password_hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when *password* matches; False for a wrong password or a malformed hash."""
    try:
        return password_hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than the current ones."""
    return password_hasher().check_needs_rehash(password_hash)
