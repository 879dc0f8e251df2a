"""Settings pointing at the session's test servers, and an in-process client with the lifespan."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from servicekit.auth import issue_access_token
from servicekit.keys import jwks, load_signing_key
from servicekit.settings import Settings
from servicekit.testing.database import Database

S = TypeVar("S", bound=Settings)
#: The tests' token issuer key (plays auth-svc's ``JWT_SIGNING_KEY``); public, never used elsewhere.
TEST_SIGNING_KEY = "servicekit-test-signing-key-" + "0" * 32
#: The JWK Set every service's test settings verify with (``JWT_PUBLIC_KEYS``).
TEST_PUBLIC_KEYS = json.dumps(jwks(load_signing_key(TEST_SIGNING_KEY)), separators=(",", ":"))


def issue_test_token(
    settings: Settings, user_id: str, *, session_id: str | None = None, **kwargs: Any
) -> str:
    """An access token for *user_id* as auth-svc would issue it (signed with :data:`TEST_SIGNING_KEY`,
    for *settings*' issuer and audience); a fresh session id unless given."""
    key = load_signing_key(TEST_SIGNING_KEY)
    sid = session_id or uuid.uuid4().hex
    return issue_access_token(settings, str(user_id), session_id=sid, key=key, **kwargs)


def bearer(settings: Settings, user_id: str, **kwargs: Any) -> dict[str, str]:
    """``Authorization`` headers carrying :func:`issue_test_token`'s token."""
    return {"Authorization": f"Bearer {issue_test_token(settings, user_id, **kwargs)}"}


def settings_for(
    cls: type[S],
    service_name: str,
    *,
    database: Database | None = None,
    redis: Any = None,
    redis_db: int = 0,
    rabbitmq: Any = None,
    rabbitmq_vhost: str = "market",
    rabbitmq_user: str | None = None,
    rabbitmq_password: str | None = None,
    **overrides: Any,
) -> S:
    """Settings of *cls* pointing at the given test servers; everything else from *overrides*."""
    values: dict[str, Any] = {
        "service_name": service_name,
        "environment": "test",
        "jwt_public_keys": TEST_PUBLIC_KEYS,
        "postgres_host": None,
        "redis_host": None,
        "rabbitmq_host": None,
    }
    if database is not None:
        values |= {
            "postgres_host": database.host,
            "postgres_port": database.port,
            "postgres_db": database.name,
            "postgres_user": database.user,
            "postgres_password": database.password,
        }
    if redis is not None:
        values |= {
            "redis_host": redis.host,
            "redis_port": redis.port,
            "redis_db": redis_db,
            "redis_user": getattr(redis, "username", None),
            "redis_password": getattr(redis, "password", None),
        }
    if rabbitmq is not None:
        values |= {
            "rabbitmq_host": rabbitmq.host,
            "rabbitmq_port": rabbitmq.port,
            "rabbitmq_vhost": rabbitmq_vhost,
            "rabbitmq_user": rabbitmq_user or rabbitmq.user,
            "rabbitmq_password": rabbitmq_password or rabbitmq.password,
        }
    values |= overrides
    return cls(**values)


@asynccontextmanager
async def app_client(app: FastAPI, base_url: str = "http://testserver") -> AsyncIterator[AsyncClient]:
    """An AsyncClient talking to *app* in-process, with startup/shutdown (the lifespan) around it."""
    async with (
        app.router.lifespan_context(app),
        AsyncClient(transport=ASGITransport(app=app), base_url=base_url) as client,
    ):
        yield client
