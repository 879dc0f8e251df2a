"""JWT (HS256) access/refresh tokens, the ``CurrentUser`` dependency and argon2 password hashing."""

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
from servicekit.settings import Settings

ALGORITHM = "HS256"
TokenType = Literal["access", "refresh"]
ACCESS_TTL = timedelta(minutes=15)
REFRESH_TTL = timedelta(days=14)
#: Claims every token must carry; PyJWT rejects a token missing any of them.
REQUIRED_CLAIMS = ["exp", "iat", "nbf", "iss", "aud", "sub", "jti", "typ"]
#: Tolerated clock skew between services.
LEEWAY = timedelta(seconds=10)


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

    def has_role(self, role: str) -> bool:
        """True when the caller holds *role*."""
        return role in self.roles


def issue_token(
    settings: Settings,
    subject: str,
    token_type: TokenType,
    *,
    ttl: timedelta | None = None,
    roles: tuple[str, ...] | list[str] = (),
    session_id: str | None = None,
    extra: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> str:
    """Sign a token for *subject*; ``ttl`` defaults to 15 min (access) / 14 days (refresh)."""
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
        "jti": uuid.uuid4().hex,
        "typ": token_type,
    }
    if roles:
        claims["roles"] = list(roles)
    if session_id:
        claims["sid"] = session_id
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm=ALGORITHM)


def issue_access_token(settings: Settings, subject: str, **kwargs: Any) -> str:
    """A short-lived access token."""
    return issue_token(settings, subject, "access", **kwargs)


def issue_refresh_token(settings: Settings, subject: str, session_id: str, **kwargs: Any) -> str:
    """A refresh token bound to a server-side session (see :mod:`servicekit.sessions`)."""
    return issue_token(settings, subject, "refresh", session_id=session_id, **kwargs)


def decode_token(settings: Settings, token: str, expected_type: TokenType = "access") -> TokenClaims:
    """Verify signature, ``exp``/``nbf``, ``aud``, ``iss`` and the token type; raise :class:`Unauthorized`."""
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=[ALGORITHM],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=LEEWAY,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("token expired", code="token_expired") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("invalid token", code="invalid_token") from exc
    if claims.get("typ") != expected_type:
        raise Unauthorized(f"not an {expected_type} token", code="invalid_token")
    roles = claims.get("roles") or []
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise Unauthorized("invalid token", code="invalid_token")
    known = {*REQUIRED_CLAIMS, "roles", "sid"}
    return TokenClaims(
        subject=str(claims["sub"]),
        token_type=expected_type,
        token_id=str(claims["jti"]),
        issued_at=datetime.fromtimestamp(claims["iat"], UTC),
        expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        roles=tuple(roles),
        session_id=claims.get("sid"),
        extra={k: v for k, v in claims.items() if k not in known},
    )


#: OpenAPI's "Authorize" button; it never raises itself (we render our own 401).
bearer_scheme = HTTPBearer(auto_error=False, description="access token from auth-svc")


async def get_current_user(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
) -> Principal:
    """FastAPI dependency: the caller of a request with a valid access token, else 401."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("missing bearer token")
    claims = decode_token(request.app.state.settings, credentials.credentials, "access")
    return Principal(user_id=claims.subject, roles=claims.roles, token_id=claims.token_id)


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
