"""The auth-svc app factory: ``uvicorn auth_svc.main:create_app --factory``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from servicekit.app import create_app as create_service_app
from servicekit.auth import signing_key
from servicekit.runtime import Runtime

import auth_svc.events  # noqa: F401  (registers the payload models of the events published here)
from auth_svc.api.routes import keys, tokens, users
from auth_svc.core.config import Settings, get_settings
from auth_svc.core.hashing import PasswordHashing

#: The manifest's ``route`` (services/auth-svc/service.yaml); the gateway forwards only this prefix.
ROUTE_PREFIX = "/api/auth"


def api_router() -> APIRouter:
    """Every resource router under the route prefix."""
    router = APIRouter(prefix=ROUTE_PREFIX)
    router.include_router(users.router)
    router.include_router(tokens.router)
    router.include_router(keys.router)
    return router


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; settings come from the environment unless given (tests)."""
    settings = settings or get_settings()
    signing_key(settings)  # auth-svc is the token issuer: refuse to start without its key

    @asynccontextmanager
    async def hashing(app: FastAPI, runtime: Runtime) -> AsyncIterator[None]:
        passwords = PasswordHashing.for_limit(settings.memory_limit_mib, settings.password_hash_concurrency)
        app.state.passwords = passwords
        try:
            yield
        finally:
            passwords.close()

    return create_service_app(settings, routers=[api_router()], lifespan=hashing, title="auth-svc")
