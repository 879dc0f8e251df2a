"""The auth-svc app factory: ``uvicorn auth_svc.main:create_app --factory``."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from servicekit.app import create_app as create_service_app

import auth_svc.events  # noqa: F401  (registers the payload models of the events published here)
from auth_svc.api.routes import tokens, users
from auth_svc.core.config import Settings, get_settings

#: The manifest's ``route`` (services/auth-svc/service.yaml); the gateway forwards only this prefix.
ROUTE_PREFIX = "/api/auth"


def api_router() -> APIRouter:
    """Every resource router under the route prefix."""
    router = APIRouter(prefix=ROUTE_PREFIX)
    router.include_router(users.router)
    router.include_router(tokens.router)
    return router


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; settings come from the environment unless given (tests)."""
    return create_service_app(settings or get_settings(), routers=[api_router()], title="auth-svc")
