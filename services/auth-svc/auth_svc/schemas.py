"""Request and response bodies of auth-svc."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+$")
PASSWORD_MIN = 12
PASSWORD_MAX = 128


def _email(value: str) -> str:
    value = value.strip().lower()
    if len(value) > 320 or not EMAIL.match(value):
        raise ValueError("is not an email address like 'ada@example.com'")
    return value


def _password_policy(value: str) -> str:
    if len(value) < PASSWORD_MIN:
        raise ValueError(f"must be at least {PASSWORD_MIN} characters")
    if not re.search(r"[A-Za-z]", value) or not re.search(r"[0-9]", value):
        raise ValueError("must contain at least one letter and one digit")
    if value.strip() != value:
        raise ValueError("must not start or end with whitespace")
    return value


#: The document states the address rule (the server trims and lowercases first, so it accepts more).
Email = Annotated[
    str,
    AfterValidator(_email),
    Field(json_schema_extra={"pattern": EMAIL.pattern, "maxLength": 320, "examples": ["ada@example.com"]}),
]
#: Login takes any password up to the maximum: the policy applies when a password is chosen.
Password = Annotated[str, Field(min_length=1, max_length=PASSWORD_MAX)]
NewPassword = Annotated[
    str,
    Field(
        max_length=PASSWORD_MAX,
        json_schema_extra={"minLength": PASSWORD_MIN},
        description=f"{PASSWORD_MIN}-{PASSWORD_MAX} characters with at least one letter and one digit, "
        "not starting or ending with whitespace",
    ),
    AfterValidator(_password_policy),
]


class RegisterRequest(BaseModel):
    """``POST /register``: a new account."""

    email: Email
    password: NewPassword


class LoginRequest(BaseModel):
    """``POST /login``: credentials."""

    email: Email
    password: Password


class RefreshRequest(BaseModel):
    """``POST /refresh`` and ``POST /logout``: the refresh token issued at login or the last refresh."""

    refresh_token: Annotated[str, Field(min_length=1, max_length=2048)]


class UserOut(BaseModel):
    """An account as the API shows it (never the hash)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    created_at: datetime


class TokenPair(BaseModel):
    """Tokens issued by login and refresh."""

    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="access token lifetime in seconds")


class Jwk(BaseModel):
    """One Ed25519 public key (RFC 8037), named by its RFC 7638 thumbprint."""

    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: str = Field(description="the public key, base64url")
    kid: str = Field(description="the key's RFC 7638 thumbprint; tokens name it in their header")
    alg: Literal["EdDSA"]
    use: Literal["sig"]


class JwkSet(BaseModel):
    """``GET /.well-known/jwks.json``: the keys tokens are verified with (RFC 7517)."""

    keys: list[Jwk]
